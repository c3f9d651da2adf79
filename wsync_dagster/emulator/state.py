"""Keeping an emulator's state across restarts (``--state-file``), as a real workspace keeps its.

What is kept: connections, data models, pipelines (with where their grid has got to), runs, the run id
counter, record limits, profiles (with the MPID generator's state) and a manual clock's time. Tokens,
faults and the request log are not: they belong to one process. A run that was executing when the
emulator stopped is executed again after the restart (its profile writes are upserts).

The file is JSON, written whole to a temporary file and renamed over the old one, so a crash leaves the
previous snapshot, never half of one.
"""

import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from wsync_dagster.emulator.backend.store import Store
from wsync_dagster.emulator.model import Audit, Connection, DataModel, Pipeline, Run
from wsync_dagster.emulator.profiles import Profile

STATE_VERSION = 1
_RUN_INSTANTS = (
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "start_date",
    "end_date",
)


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _audit(audit: Audit) -> dict[str, Any]:
    return {
        "created_on": _instant(audit.created_on),
        "created_by": audit.created_by,
        "last_modified_on": _instant(audit.last_modified_on),
        "last_modified_by": audit.last_modified_by,
    }


def _load_audit(data: dict[str, Any]) -> Audit:
    created = _parse(data["created_on"])
    assert created is not None
    return Audit(
        created, data["created_by"], _parse(data["last_modified_on"]), data["last_modified_by"]
    )


def _run(run: Run) -> dict[str, Any]:
    data = asdict(run)
    data.pop("claimed")
    data["audit"] = _audit(run.audit)
    data.update({name: _instant(getattr(run, name)) for name in _RUN_INSTANTS})
    return data


def _load_run(data: dict[str, Any]) -> Run:
    fields: dict[str, Any] = {**data, "audit": _load_audit(data["audit"])}
    fields.update({name: _parse(data[name]) for name in _RUN_INSTANTS})
    return Run(**fields)


def _profile(profile: Profile) -> dict[str, Any]:
    return {
        "mpid": profile.mpid,
        "user_identities": profile.user_identities,
        "device_identities": profile.device_identities,
        "attributes": profile.attributes,
        "created_ms": profile.created_ms,
        "last_stored_ms": profile.last_stored_ms,
    }


def snapshot(store: Store) -> dict[str, Any]:
    """Everything worth keeping, as JSON-ready data (taken under the store's lock)."""
    with store.lock:
        profiles = store.profiles
        return {
            "version": STATE_VERSION,
            "clock": _instant(store.clock.now()),
            "next_run_id": store.next_run_id,
            "record_limits": store.record_limits,
            "connections": [
                {
                    "fields": c.fields,
                    "secrets": sorted(c.secrets),
                    "audit": _audit(c.audit),
                    "is_faulted": c.is_faulted,
                }
                for c in store.connections.values()
            ],
            "models": [
                {"fields": m.fields, "audit": _audit(m.audit)} for m in store.models.values()
            ],
            "pipelines": [
                {
                    "fields": p.fields,
                    "audit": _audit(p.audit),
                    "start": _instant(p.start),
                    "end": _instant(p.end),
                    "partner_feed_id": p.partner_feed_id,
                    "is_faulted": p.is_faulted,
                    "faulted_reason": p.faulted_reason,
                    "next_interval": p.next_interval,
                }
                for p in store.pipelines.values()
            ],
            "runs": {pid: [_run(r) for r in runs] for pid, runs in store.runs.items()},
            "profiles": [_profile(p) for p in profiles],
            "mpid_generator": profiles.generator_state(),
        }


def restore(store: Store, data: dict[str, Any]) -> None:
    """Replace the store's state with a :func:`snapshot`; a manual clock never moves back."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported emulator state version {data.get('version')!r}")
    with store.lock:
        store.reset()
        for c in data["connections"]:
            connection = Connection(
                c["fields"], frozenset(c["secrets"]), _load_audit(c["audit"]), c["is_faulted"]
            )
            store.connections[c["fields"]["id"]] = connection
        for m in data["models"]:
            store.models[m["fields"]["id"]] = DataModel(m["fields"], _load_audit(m["audit"]))
        for p in data["pipelines"]:
            start = _parse(p["start"])
            assert start is not None
            store.pipelines[p["fields"]["id"]] = Pipeline(
                p["fields"], _load_audit(p["audit"]), start, _parse(p["end"]),
                p["partner_feed_id"], p["is_faulted"], p["faulted_reason"], p["next_interval"],
            )  # fmt: skip
        store.runs = {pid: [_load_run(r) for r in runs] for pid, runs in data["runs"].items()}
        store.next_run_id = data["next_run_id"]
        store.record_limits = dict(data["record_limits"])
        store.profiles.restore([_load_profile(p) for p in data["profiles"]], data["mpid_generator"])
        saved_clock = _parse(data["clock"])
        if store.clock.mode == "manual" and saved_clock and saved_clock > store.clock.now():
            store.clock.set(saved_clock)
        store.changed.notify_all()


def _load_profile(data: dict[str, Any]) -> Profile:
    profile = Profile(data["mpid"], data["created_ms"])
    profile.user_identities = dict(data["user_identities"])
    profile.device_identities = dict(data["device_identities"])
    profile.attributes = dict(data["attributes"])
    profile.last_stored_ms = data["last_stored_ms"]
    return profile


def save(store: Store, path: Path) -> None:
    """Write the store's :func:`snapshot` to ``path`` atomically."""
    with store.lock:  # the snapshot shares the store's dicts: serialize before they change
        text = json.dumps(snapshot(store), separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def load(store: Store, path: Path) -> bool:
    """Restore the store from ``path``; False (state untouched) when there is no such file."""
    if not path.exists():
        return False
    restore(store, json.loads(path.read_text(encoding="utf-8")))
    return True
