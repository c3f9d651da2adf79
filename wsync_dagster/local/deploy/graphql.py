"""Drive the deployment through Dagster's GraphQL API, the API its UI uses (plain HTTP, no client)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from wsync_dagster.local.deploy.cluster import LOCATION_NAME, LocalDeployment, wait_until
from wsync_dagster.sync.assets import naming
from wsync_dagster.sync.assets.metadata import RunTags
from wsync_dagster.sync.engine.rotation import rotating_pool_limit

REPOSITORY_NAME = "__repository__"
ASSET_JOB = "__ASSET_JOB"
POOL_LIMIT = 1  # as deploy/dagster.yaml's concurrency.pools.default_limit

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

    def location_loaded_after_reload(self) -> bool:
        """True once the location is loaded; while it shows a load error, ask for a reload."""
        status, error = self.location_status()
        if status == "LOADED" and error is None:
            return True
        if status == "LOADED":  # e.g. the code server restarted: reconnect
            self.reload_location()
        return False

    def daemons_healthy(self) -> bool:
        statuses = self.query(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    def reload_location(self) -> None:
        self.query(
            "mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) "
            "{ __typename } }",
            {"name": LOCATION_NAME},
        )

    def set_pool_limit(self, pool: str, limit: int) -> None:
        self.query(
            "mutation($pool: String!, $limit: Int!) { setConcurrencyLimit(concurrencyKey: $pool, "
            "limit: $limit) }",
            {"pool": pool, "limit": limit},
        )

    def launch_backfill(self, asset_path: Sequence[str], partitions: list[str]) -> str:
        params = {"partitionNames": partitions, "assetSelection": [{"path": list(asset_path)}]}
        result = self.query(_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(f"backfill of {asset_path} not launched: {result}")
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.query(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        return result.get("status") or f"{result['__typename']}: {result.get('message')}"

    def launch_materialization(
        self,
        asset_path: Sequence[str],
        partition: str | None = None,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Queue one run materializing ``asset_path`` (one partition, or none): the UI's button."""
        labels: dict[str, str] = {RunTags.PARTITION: partition} if partition else {}
        labels |= tags or {}
        tags_param = [{"key": key, "value": value} for key, value in labels.items()]
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "pipelineName": ASSET_JOB,
                "assetSelection": [{"path": list(asset_path)}],
            },
            "executionMetadata": {"tags": tags_param},
            "runConfigData": run_config or {},
        }
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"materialization of {asset_path} not launched: {result}")
        return result["run"]["runId"]

    def launch_run(
        self,
        job: str,
        asset_paths: Sequence[Sequence[str]] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Queue one run of ``job`` (of ``asset_paths`` only, when given) with ``tags``."""
        selector: dict[str, Any] = {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": REPOSITORY_NAME,
            "pipelineName": job,
        }
        if asset_paths is not None:
            selector["assetSelection"] = [{"path": list(path)} for path in asset_paths]
        params = {
            "selector": selector,
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
            "runConfigData": {},
        }
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"run of {job} {asset_paths or ''} not launched: {result}")
        return result["run"]["runId"]


def ready_api(deployment: LocalDeployment, timeout: float = 180.0) -> DagsterGraphQL:
    """The deployment's API once the code location is loaded and the daemons are healthy, with the
    pool of every sync set to 1 (the rotating syncs' shared pool to the free slots).

    Setting the pools explicitly matters: Dagster 1.13's run queue creates a pool's default limit
    only while dequeuing, after it has read the configured pools, so two runs of a never-seen pool
    queued in the same pass both start. A deployment sets its pools when it deploys (here; in
    production ``dagster instance concurrency set wsync/<pipeline id> 1`` or the UI's Pools page).
    """
    api = DagsterGraphQL(deployment.webserver_url)
    wait_until(api.location_loaded_after_reload, timeout, "the code location to load")
    wait_until(api.daemons_healthy, timeout, "the daemons to report healthy")
    workspace = deployment.stack.served_workspace()
    for spec in (bound.spec for bound in workspace):
        # The rotating syncs' shared pool gets the slots the permanent syncs leave (docs/deploy.md).
        limit = rotating_pool_limit(workspace) if spec.rotate else POOL_LIMIT
        api.set_pool_limit(naming.pool_name(spec), limit)
    return api


# Schedules as the daemon evaluates them, for a simulated time: the scale benchmark evaluates each
# tick of the emulator's clock (Dagster's schedules tick on the wall clock) and launches its run
# requests through the same API as the UI's "Test schedule" then "Launch all".
_SCHEDULES = """
query($repo: RepositorySelector!) { schedulesOrError(repositorySelector: $repo) { __typename
  ... on Schedules { results { name cronSchedule executionTimezone pipelineName } }
  ... on PythonError { message } } }
"""
_FUTURE_TICKS = """
query($selector: ScheduleSelector!, $cursor: Float!, $until: Float!) {
  scheduleOrError(scheduleSelector: $selector) { __typename
  ... on Schedule { futureTicks(cursor: $cursor, until: $until) { results { timestamp } } }
  ... on PythonError { message } } }
"""
_DRY_RUN = """
mutation($selector: ScheduleSelector!, $timestamp: Float!) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) { __typename
  ... on DryRunInstigationTick { timestamp evaluationResult {
      runRequests { runKey tags { key value } assetSelection { path } jobName }
      skipReason error { message } } }
  ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    cron: str
    job: str


@dataclass(frozen=True)
class RequestedRun:
    """One run request of a schedule tick, as the dry run returned it."""

    job: str
    run_key: str | None
    tags: dict[str, str]
    asset_paths: list[list[str]] | None


@dataclass(frozen=True)
class TickResult:
    runs: list[RequestedRun]
    skip_reason: str | None


def _repository() -> dict[str, str]:
    return {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}


def _schedule_selector(name: str) -> dict[str, str]:
    return {**_repository(), "scheduleName": name}


class ScheduleDriver:
    """Evaluate the deployment's schedules for given instants and launch what they request."""

    def __init__(self, api: DagsterGraphQL) -> None:
        self.api = api

    def schedules(self) -> list[ScheduleInfo]:
        data = self.api.query(_SCHEDULES, {"repo": _repository()})["schedulesOrError"]
        if data["__typename"] != "Schedules":
            raise GraphQLError(f"schedules not listed: {data}")
        return [
            ScheduleInfo(s["name"], s["cronSchedule"], s["pipelineName"]) for s in data["results"]
        ]

    def ticks(self, name: str, start: float, until: float) -> list[float]:
        """The schedule's tick times (epoch seconds) in ``start <= t < until``."""
        variables = {"selector": _schedule_selector(name), "cursor": start, "until": until}
        data = self.api.query(_FUTURE_TICKS, variables)["scheduleOrError"]
        if data["__typename"] != "Schedule":
            raise GraphQLError(f"ticks of {name} not listed: {data}")
        return [t["timestamp"] for t in data["futureTicks"]["results"]]

    def evaluate(self, schedule: ScheduleInfo, timestamp: float) -> TickResult:
        """The schedule's tick at ``timestamp``, evaluated by the code server with the instance's
        state (its runs in flight included), as the daemon would at that time."""
        variables = {"selector": _schedule_selector(schedule.name), "timestamp": timestamp}
        data = self.api.query(_DRY_RUN, variables)["scheduleDryRun"]
        if data["__typename"] != "DryRunInstigationTick":
            raise GraphQLError(f"tick of {schedule.name} not evaluated: {data}")
        result = data["evaluationResult"]
        if result.get("error"):
            raise GraphQLError(f"tick of {schedule.name} failed: {result['error']['message']}")
        runs = [
            RequestedRun(
                job=r.get("jobName") or schedule.job,
                run_key=r.get("runKey"),
                tags={t["key"]: t["value"] for t in r["tags"]},
                asset_paths=[a["path"] for a in r["assetSelection"]]
                if r["assetSelection"]
                else None,
            )
            for r in result.get("runRequests") or []
        ]
        return TickResult(runs, result.get("skipReason"))

    def launch(self, schedule: ScheduleInfo, run: RequestedRun) -> str:
        """Queue ``run`` with the tags the daemon adds to a run it launches for a schedule."""
        tags = {**run.tags, "dagster/schedule_name": schedule.name}
        if run.run_key:
            tags["dagster/run_key"] = run.run_key
        return self.api.launch_run(run.job, run.asset_paths, tags)
