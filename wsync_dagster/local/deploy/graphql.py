"""Drive the deployment through Dagster's GraphQL API, the API its UI uses (plain HTTP, no client)."""

from typing import Any

import requests

from wsync_dagster.local.deploy.cluster import LOCATION_NAME

REPOSITORY_NAME = "__repository__"
ASSET_JOB = "__ASSET_JOB"

_LOCATIONS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
_DAEMONS = """
query { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""
_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on Error { message } } }
"""
_LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on Error { message } } }
"""
_BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status } ... on Error { message } } }
"""


class GraphQLError(RuntimeError):
    """The webserver answered with an error, or a mutation did not succeed."""


class DagsterGraphQL:
    def __init__(self, webserver_url: str, timeout: float = 60.0) -> None:
        self.url = f"{webserver_url.rstrip('/')}/graphql"
        self.timeout = timeout
        self.session = requests.Session()

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.session.post(
            self.url, json={"query": text, "variables": variables or {}}, timeout=self.timeout
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def location_status(self) -> tuple[str, str | None]:
        """(load status, error message or None) of the project's code location."""
        data = self.query(_LOCATIONS)["workspaceOrError"]
        for entry in data.get("locationEntries", []):
            if entry["name"] == LOCATION_NAME:
                loaded = entry["locationOrLoadError"] or {}
                return entry["loadStatus"], loaded.get("message")
        return "MISSING", f"no code location named {LOCATION_NAME}"

    def location_loaded(self) -> bool:
        status, error = self.location_status()
        if error and status == "LOADED":
            raise GraphQLError(f"code location {LOCATION_NAME} failed to load: {error}")
        return status == "LOADED" and error is None

    def daemons_healthy(self) -> bool:
        statuses = self.query(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    def reload_location(self) -> None:
        self.query(
            "mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) "
            "{ __typename } }",
            {"name": LOCATION_NAME},
        )

    def launch_backfill(self, asset_path: list[str], partitions: list[str]) -> str:
        params = {"partitionNames": partitions, "assetSelection": [{"path": asset_path}]}
        result = self.query(_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"backfill of {asset_path} not launched: {result}")
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.query(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        return result.get("status") or f"{result['__typename']}: {result.get('message')}"

    def launch_materialization(self, asset_path: list[str], partition: str | None = None) -> str:
        """Queue one run materializing ``asset_path`` (one partition, or none): the UI's button."""
        tags = [{"key": "dagster/partition", "value": partition}] if partition else []
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "pipelineName": ASSET_JOB,
                "assetSelection": [{"path": asset_path}],
            },
            "executionMetadata": {"tags": tags},
        }
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"materialization of {asset_path} not launched: {result}")
        return result["run"]["runId"]
