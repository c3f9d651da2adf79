"""The Profile API's reads: one profile by MPID, or resolved from one identity."""

from typing import Any

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.errors import bad_request, not_found
from wsync_dagster.emulator.mapping import USER_IDENTITY_COLUMNS
from wsync_dagster.emulator.profiles import PROFILE_FIELDS


class ProfileApi:
    """Looks up the profiles that runs stored, in the Profile API's scope of one workspace."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def check_profile_scope(self, org_id: str, account_id: str, workspace_id: str) -> None:
        expected = (
            self._store.config.org_id,
            self._store.config.account_id,
            self._store.config.workspace_id,
        )
        if (org_id, account_id, workspace_id) != tuple(str(v) for v in expected):
            raise not_found(f"No workspace {workspace_id} in account {account_id} of org {org_id}.")

    def profile(self, mpid: str, fields: tuple[str, ...]) -> dict[str, Any]:
        with self._store.lock:
            try:
                found = self._store.profiles.get(int(mpid))
            except ValueError:
                raise bad_request(f"mpid must be a 64-bit integer (got {mpid!r}).") from None
            if found is None:
                raise not_found(f"No profile with mpid {mpid}.")
            return found.to_json(fields)

    def resolve(self, body: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        """Look a profile up by one identity (``POST /userprofile/v1/resolve/...``)."""
        identity_type, value = _resolve_request(body)
        with self._store.lock:
            found = self._store.profiles.resolve(identity_type, value)
            if found is None:
                raise not_found(f"No profile with {identity_type} {value!r}.")
            return found.to_json(fields)


def parse_fields(raw: str | None) -> tuple[str, ...]:
    """The Profile API's required ``fields`` query parameter."""
    if not raw:
        raise bad_request(f"The query parameter fields is required ({', '.join(PROFILE_FIELDS)}).")
    fields = tuple(f.strip() for f in raw.split(",") if f.strip())
    unknown = [f for f in fields if f not in PROFILE_FIELDS]
    if unknown or not fields:
        raise bad_request(
            f"Unknown fields: {', '.join(unknown)}; known: {', '.join(PROFILE_FIELDS)}."
        )
    return fields


_RESOLVE_TYPES = tuple(dict.fromkeys(USER_IDENTITY_COLUMNS.values()))


def _resolve_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    unknown = sorted(set(body) - {"environment_type", "identity"})
    if unknown:
        raise bad_request(f"Unknown field(s): {', '.join(unknown)}.")
    if body.get("environment_type") not in ("development", "production"):
        raise bad_request("environment_type must be development or production.")
    identity = body.get("identity")
    if not isinstance(identity, dict) or set(identity) != {"type", "value"}:
        raise bad_request('identity must be an object {"type": ..., "value": ...}.')
    kind, value = identity["type"], identity["value"]
    if kind not in _RESOLVE_TYPES:
        raise bad_request(
            f"identity.type must be one of {', '.join(_RESOLVE_TYPES)} (got {kind!r})."
        )
    if not isinstance(value, str) or not value:
        raise bad_request("identity.value must be a non-empty string.")
    return kind, value
