"""A :class:`~.plan.WorkspacePlan` as text for people and as one JSON document for CI.

The JSON document's schema is described in docs/plan.md (``version`` says which); its ``text`` is
the text rendering, so a CI job can post it without formatting anything itself. Secrets appear
only by the name of the variable they would be read from, and as "will be sent".
"""

import difflib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from wsync_dagster.sync.engine.plan import (
    PreflightOutcome,
    ResourceChange,
    SyncOutcome,
    WorkspacePlan,
)
from wsync_dagster.sync.engine.reconcile import Drift
from wsync_dagster.sync.registry.windows import WindowCount

SCHEMA_VERSION = 1
SQL_FIELDS = ("sql_query",)
SIGNS = {"create": "+", "update": "~", "unchanged": "="}
SHOWN_WINDOWS = 5
EXIT_MEANING = {
    0: "nothing to change",
    1: "a problem: a materialization would be refused, or a check failed",
    2: "changes pending",
}


def _instant(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}"


def plain(value: object) -> Any:
    """A drift value as JSON holds it (instants as ``...Z``)."""
    if isinstance(value, datetime):
        return _instant(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def sql_diff(drift: Drift) -> str:
    """The SQL of mParticle's data model against the registry's, as a unified diff."""
    current = str(drift.current or "").strip().splitlines()
    declared = str(drift.declared or "").strip().splitlines()
    lines = difflib.unified_diff(current, declared, "mParticle", "registry", lineterm="")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- JSON


def _resource(change: ResourceChange) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": change.kind, "id": change.id, "action": change.action}
    found["drift"] = [
        {"field": d.field, "current": plain(d.current), "declared": plain(d.declared)}
        | ({"diff": sql_diff(d)} if d.field in SQL_FIELDS else {})
        for d in change.drift
    ]
    found["secrets"] = [
        {"field": s.field, "variable": s.variable, "status": "will be sent"} for s in change.secrets
    ]
    if change.note:
        found["note"] = change.note
    return found


def _count(count: WindowCount) -> dict[str, Any]:
    window = count.window
    return {
        "key": window.key,
        "start": _instant(window.start),
        "end": _instant(window.end),
        "rows": count.rows,
        "rows_without_identity": count.rows_without_identity,
    }


def _preflight(outcome: PreflightOutcome) -> dict[str, Any]:
    pending = outcome.pending
    status = "not_run" if outcome.not_run else "refused" if outcome.refused else "ok"
    found: dict[str, Any] = {"status": status}
    if pending is not None:
        windows = pending.windows
        found["windows"] = {
            "pending": pending.pending,
            "counted": len(windows),
            "sample": pending.sample,
            "first": windows[0].key if windows else None,
            "last": windows[-1].key if windows else None,
            "failed": list(pending.failed),
            "not_examined": pending.not_examined,
        }
    report = outcome.report
    if report is not None:
        found["limit"] = report.limit
        found["columns"] = list(report.columns)
        found["identity_columns"] = list(report.identity_columns)
        found["timestamp_column"] = report.timestamp_column
    counts = outcome.all_counts
    if counts:
        largest = max(counts, key=lambda c: c.rows)
        found["rows"] = {
            "total": sum(c.rows for c in counts),
            "largest_window": _count(largest),
            "without_identity": sum(c.rows_without_identity for c in counts),
        }
    if outcome.refused or outcome.not_run:
        found["message"] = outcome.refused or outcome.not_run
    return found


def _sync(outcome: SyncOutcome) -> dict[str, Any]:
    spec = outcome.bound.spec
    return {
        "name": outcome.name,
        "declared_in": outcome.where or None,
        "schedule": spec.schedule.interval,
        "pipeline_id": spec.resolved_pipeline_id,
        "changes": outcome.changes,
        "resources": [_resource(r) for r in outcome.resources],
        "preflight": _preflight(outcome.preflight),
        "refusals": list(outcome.refusals),
        "problems": list(outcome.problems),
    }


def summary(plan: WorkspacePlan) -> dict[str, int]:
    """Resources by action, each shared resource (a connection) counted once, and problems."""
    actions: dict[tuple[str, str], str] = {}
    for outcome in plan.syncs:
        for resource in outcome.resources:
            actions.setdefault((resource.kind, resource.id), resource.action)
    values = list(actions.values())
    return {
        "create": values.count("create"),
        "update": values.count("update"),
        "unchanged": values.count("unchanged"),
        "problems": len(plan.all_problems),
    }


def document(plan: WorkspacePlan) -> dict[str, Any]:
    """The plan as the JSON document docs/plan.md describes."""
    slots = plan.slots
    return {
        "version": SCHEMA_VERSION,
        "exit_code": plan.exit_code,
        "meaning": EXIT_MEANING[plan.exit_code],
        "now": _instant(plan.now) if plan.now else None,
        "workspace_id": plan.workspace_id,
        "summary": summary(plan),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in plan.checks],
        "syncs": [_sync(s) for s in plan.syncs],
        "active_pipelines": None
        if slots is None
        else {
            "limit": slots.limit,
            "set_by": slots.owner,
            "now": list(slots.now),
            "after": list(slots.after),
            "problem": slots.problem,
        },
        "unmanaged_pipelines": [
            {"id": p.id, "name": p.name, "active": p.active, "one_off_of": p.one_off_of}
            for p in plan.unmanaged
        ],
        "problems": list(plan.all_problems),
        "text": render_text(plan),
    }


# ----------------------------------------------------------------------------------------- text


def _value(value: object) -> str:
    shown = plain(value)
    return "null" if shown is None else repr(shown)


def _resource_lines(change: ResourceChange, shared_with: str | None) -> list[str]:
    head = f"  {SIGNS[change.action]} {change.kind} {change.id}: {change.action}"
    if shared_with is not None:
        return [f"{head} (shared; see sync {shared_with})"]
    extras = [f"{s.field} from {s.variable}: will be sent" for s in change.secrets]
    if change.note:
        extras.append(change.note)
    lines = [head + (f" ({'; '.join(extras)})" if extras else "")]
    for drift in change.drift:
        if drift.field in SQL_FIELDS:
            lines.append(f"      {drift.field}:")
            lines += [f"        {line}" for line in sql_diff(drift).splitlines()]
        else:
            lines.append(
                f"      {drift.field}: {_value(drift.current)} -> {_value(drift.declared)}"
            )
    return lines


def _window_span(outcome: PreflightOutcome) -> str:
    pending = outcome.pending
    if pending is None or not pending.windows:
        return "no window"
    windows = pending.windows
    first, last = windows[0], windows[-1]
    if pending.sample:
        return f"sample window {last.key} ({last.describe()}; nothing is pending)"
    if first.key in ("on_demand", "once"):
        return f"{first.key} window {first.describe()}"
    span = first.key if len(windows) == 1 else f"{first.key} .. {last.key}"
    text = f"{pending.pending} pending window(s) {span}"
    if pending.not_examined:
        text += f" (the {pending.not_examined} older closed window(s) were not examined)"
    if pending.failed:
        text += f"; {len(pending.failed)} failed before (a materialization repairs them)"
    return text


def _preflight_lines(outcome: PreflightOutcome) -> list[str]:
    if outcome.not_run:
        return [f"  pre-flight: NOT RUN: {outcome.not_run}"]
    span = _window_span(outcome)
    counts = outcome.all_counts
    if outcome.refused:
        lines = [f"  pre-flight: REFUSED over {span}"]
        return lines + [f"    {line}" for line in outcome.refused.splitlines()]
    report = outcome.report
    assert report is not None
    largest = max(counts, key=lambda c: c.rows)
    without = sum(c.rows_without_identity for c in counts)
    rows = (
        f"{largest.rows:,} rows"
        if len(counts) == 1
        else f"at most {largest.rows:,} rows in a window ({largest.window.key})"
    )
    text = (
        f"  pre-flight: ok over {span}: {rows}, limit {report.limit:,}; "
        f"{len(report.columns)} columns, identities {', '.join(report.identity_columns)}"
    )
    if without:
        text += f"; {without:,} row(s) without any identity (mParticle maps them to no profile)"
    return [text]


def _sync_lines(outcome: SyncOutcome, seen: dict[tuple[str, str], str]) -> list[str]:
    spec = outcome.bound.spec
    where = f"; {outcome.where}" if outcome.where else ""
    lines = [f"sync {outcome.name} ({spec.schedule.interval}{where})"]
    if outcome.error:
        lines.append(f"  ERROR: {outcome.error}")
    for resource in outcome.resources:
        key = (resource.kind, resource.id)
        lines += _resource_lines(resource, seen.get(key))
        seen.setdefault(key, outcome.name)
    lines += [f"  REFUSED: {line}" for line in outcome.refusals]
    lines += _preflight_lines(outcome.preflight)
    return lines


def _checks_lines(plan: WorkspacePlan) -> list[str]:
    return ["Checks:"] + [
        f"  {'ok    ' if c.ok else 'FAILED'} {c.name}: {c.detail}" for c in plan.checks
    ]


def _workspace_lines(plan: WorkspacePlan) -> Iterable[str]:
    slots = plan.slots
    if slots is not None:
        yield (
            f"Active pipelines: {len(slots.now)} now ({', '.join(slots.now) or 'none'}); "
            f"{len(slots.after)} once every sync is materialized; {slots.owner} allows "
            f"{slots.limit}"
        )
        if slots.problem:
            yield f"  PROBLEM: {slots.problem}"
    if plan.now is None:
        return
    if not plan.unmanaged:
        yield "Pipelines no registry declares: none"
        return
    yield "Pipelines no registry declares (they take active slots while active):"
    for other in plan.unmanaged:
        state = "active" if other.active else "paused"
        owner = f"; a one-off of sync '{other.one_off_of}'" if other.one_off_of else ""
        yield f"  - {other.id} ({other.name}; {state}{owner})"


def render_text(plan: WorkspacePlan) -> str:
    """The plan for people: checks, each sync, the active slots, the unmanaged pipelines, and a
    summary ending with the exit code."""
    head = f"Plan of {len(plan.syncs)} sync(s), mParticle workspace {plan.workspace_id}"
    if plan.now is not None:
        head += f", at {_instant(plan.now)}"
    lines = [f"{head} (read-only: nothing was written)", "", *_checks_lines(plan)]
    seen: dict[tuple[str, str], str] = {}
    for outcome in plan.syncs:
        lines += ["", *_sync_lines(outcome, seen)]
    lines += ["", *_workspace_lines(plan)]
    totals = summary(plan)
    lines += [
        "",
        f"Plan: {totals['create']} to create, {totals['update']} to update, "
        f"{totals['unchanged']} unchanged; {totals['problems']} problem(s).",
        f"Exit code {plan.exit_code}: {EXIT_MEANING[plan.exit_code]}.",
    ]
    return "\n".join(lines)
