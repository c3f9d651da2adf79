"""The cadence vocabulary: the registry's names, its table and the client's wire enum agree."""

from typing import get_args

from wsync_dagster.mparticle import ScheduleInterval
from wsync_dagster.sync.registry.cadences import CADENCES, CadenceName


def test_the_registry_table_and_the_wire_enum_name_the_same_cadences() -> None:
    # The client (wsync_dagster/mparticle/) knows nothing of the registry, so it declares the wire
    # values itself; the registry's CadenceName and CADENCES table must name exactly those.
    assert list(get_args(CadenceName)) == list(CADENCES) == [s.value for s in ScheduleInterval]
