"""The rules no single sync breaks on its own: unique names and ids, and the active-pipeline limit.

They hold within a registry (checked when it loads) and across every registry of a code location,
which all sync into one mParticle workspace (:func:`wsync_dagster.component.check_across`). Each
message names the syncs, where each is declared (file and line) when that is known, and the fix.
Pure: no Dagster, no I/O.
"""

from collections.abc import Callable, Sequence

from wsync_dagster.sync.registry.limits import MAX_ACTIVE_PIPELINES, Limits
from wsync_dagster.sync.registry.models import SyncSpec

Label = Callable[[SyncSpec], str]
"""How a message names a sync, e.g. ``sync 'orders'`` or ``sync 'orders' (crm/defs.yaml:12)``."""
Where = Callable[[SyncSpec], str | None]
"""Where a sync is declared, e.g. ``crm/defs.yaml:12``; None when unknown."""


def sync_label(spec: SyncSpec) -> str:
    return f"sync '{spec.name}'"


def nowhere(spec: SyncSpec) -> str | None:
    return None


def cross_sync_problems(
    syncs: Sequence[SyncSpec],
    limits: Limits | None,
    label: Label = sync_label,
    where: Where = nowhere,
    scope: str = "registry",
) -> list[str]:
    """Shared names or ids, and syncs that do not fit the active-pipeline limit (not checked when
    ``limits`` is None: the registries disagree on them). ``scope`` starts the messages about the
    whole set (``registry``, or ``code location`` across registries)."""
    problems: list[str] = []
    if not syncs:
        problems.append(f"{scope}: syncs: declares no sync; add at least one")
    owner: dict[tuple[str, str], str] = {}
    for spec in syncs:
        for kind, value in (
            ("name", spec.name),
            ("pipeline id", spec.resolved_pipeline_id),
            ("data model id", spec.resolved_data_model_id),
        ):
            if (kind, value) in owner:
                problems.append(
                    f"{label(spec)}: {kind} '{value}' is already used by "
                    f"{owner[kind, value]}; give each sync its own"
                )
            owner.setdefault((kind, value), label(spec))
    if limits is None:
        return problems
    return problems + slot_problems(syncs, limits, where, scope)


def _is_on_demand(spec: SyncSpec) -> bool:
    schedule = getattr(spec, "schedule", None)  # a salvaged invalid sync may have none
    return getattr(schedule, "interval", None) == "on_demand"


def slot_problems(
    syncs: Sequence[SyncSpec], limits: Limits, where: Where = nowhere, scope: str = "registry"
) -> list[str]:
    """Syncs active for ever must fit the workspace's limit and, when some syncs rotate, leave them
    at least one slot to take turns on."""
    active = [s for s in syncs if s.active]
    rotating = [s for s in syncs if s.rotate]
    allowed = limits.max_active_pipelines
    owner = limits.active_owner()
    if len(active) > allowed:
        fix = (
            "set rotate: true on the on_demand ones (they then take a slot only while they run), "
            if any(_is_on_demand(s) for s in active)
            else ""
        )
        return [
            f"{scope}: {len(active)} active syncs ({_names(active)}) but {owner} allows "
            f"{allowed} active pipelines: {fix}set paused: true on {len(active) - allowed} of "
            f"them or remove them; {_contract_hint(limits)}{_declared(active, where)}"
        ]
    if rotating and len(active) >= allowed:
        return [
            f"{scope}: the rotating syncs ({_names(rotating)}) have no active-pipeline slot to "
            f"take turns on: {_names(active)} are active for ever and {owner} allows "
            f"{allowed}. Pause one of them (paused: true), make an on_demand one rotate "
            f"(rotate: true), or remove it; {_contract_hint(limits)}"
            f"{_declared([*active, *rotating], where)}"
        ]
    return []


def _names(syncs: Sequence[SyncSpec]) -> str:
    return ", ".join(s.name for s in syncs)


def _contract_hint(limits: Limits) -> str:
    if limits.max_active_pipelines == MAX_ACTIVE_PIPELINES:
        return (
            "if your workspace's mParticle contract allows more active pipelines, write that "
            "number in limits.max_active_pipelines"
        )
    return "raise limits.max_active_pipelines only as far as your mParticle contract allows"


def _declared(syncs: Sequence[SyncSpec], where: Where) -> str:
    """Where each sync is declared, when known: ``. Declared at: a (x.yaml:3), b (x.yaml:9)``."""
    places = [(spec.name, place) for spec in syncs if (place := where(spec))]
    if not places:
        return ""
    return ". Declared at: " + ", ".join(f"{name} ({place})" for name, place in places)
