"""Every sync of a code location, each with the registry that declares it.

A code location may hold several ``WarehouseSyncComponent`` registries (one per team, say), each with
its own Snowflake ``connection``. Everything that acts on more than one sync at a time (the runs
sensor, the sweep of leftover rotating pipelines, the count of free active-pipeline slots, the pool
sizing) works on a :class:`Workspace`, so that each sync is always written with *its own*
registry's connection, never with another component's.

mParticle's active-pipeline limit belongs to the mParticle workspace, which every registry of a code
location shares: the registries must agree on ``limits`` (checked when the code location loads).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, SyncSpec


@dataclass(frozen=True)
class BoundSync:
    """One sync and the registry (connection, limits, default group) that declares it."""

    registry: Registry
    spec: SyncSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pipeline_id(self) -> str:
        return self.spec.resolved_pipeline_id


@dataclass(frozen=True)
class Workspace:
    """The registries of one code location, which all sync into one mParticle workspace."""

    registries: tuple[Registry, ...]

    @staticmethod
    def of(registries: Iterable[Registry]) -> "Workspace":
        return Workspace(tuple(registries))

    def __iter__(self) -> Iterator[BoundSync]:
        for registry in self.registries:
            for spec in registry.syncs:
                yield BoundSync(registry, spec)

    @property
    def syncs(self) -> tuple[BoundSync, ...]:
        return tuple(self)

    def specs(self) -> list[SyncSpec]:
        """Every sync, in declaration order (each still belongs to its own registry)."""
        return [bound.spec for bound in self]

    def get(self, name: str) -> BoundSync:
        for bound in self:
            if bound.name == name:
                return bound
        raise KeyError(name)

    @property
    def limits(self) -> Limits:
        """The workspace's limits: the first registry's (the registries agree on them)."""
        return self.registries[0].limits if self.registries else Limits()

    def permanent(self) -> list[BoundSync]:
        """The syncs whose pipeline is active for ever, each taking one slot for ever."""
        return [bound for bound in self if bound.spec.active]

    def rotating(self) -> list[BoundSync]:
        """The syncs whose pipeline takes a slot only while a materialization runs it."""
        return [bound for bound in self if bound.spec.rotate]

    def free_slots(self) -> int:
        """Active-pipeline slots the permanent syncs of every registry leave (never below 0).

        Pipelines made outside this code location take slots too; mParticle's own count, not this
        number, is what rotation waits on."""
        return max(self.limits.max_active_pipelines - len(self.permanent()), 0)
