"""One first materialization in a process of its own, for the first-deploy race tests.

:func:`materialize_one` is the target of each process: it materializes one sync of
:func:`race_registry` against the emulator (on its manual clock) and the Snowflake stand-in, and
puts ``{"sync", "success", "failure"}`` on the results queue. Importing this module imports Dagster
and the Snowflake libraries, which is what a fork server preloads once for every process.
"""

import os
import traceback
from typing import Any

from wsync_dagster.local.materialize import materialize_partitions
from wsync_dagster.local.resources import (
    LOCAL_MPARTICLE,
    emulator_clock_mparticle,
    local_snowflake_resource,
)
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.snowflake import LOCAL_PASSWORD
from wsync_dagster.local.stack import local_registry
from wsync_dagster.sync.assets.factory import build_sync_assets
from wsync_dagster.sync.registry.specs import Registry, load_registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message

TEMPLATE = "churn_risk_alerts"  # on demand: a materialization triggers its own run


def race_registry(count: int = 5) -> Registry:
    """``count`` on-demand syncs sharing the package's connection, on the sample data."""
    base = local_registry(load_registry(SAMPLE_REGISTRY), SAMPLE_ANCHOR)
    template = base.sync(TEMPLATE)
    syncs = tuple(template.model_copy(update={"name": f"race_{n}"}) for n in range(count))
    return base.model_copy(update={"syncs": syncs})


def materialize_one(emulator_url: str, snowflake_port: str, name: str, results: Any) -> None:
    """Materialize sync ``name``; its outcome goes on ``results`` (a queue), whatever happens."""
    try:
        success, failure = _materialize(emulator_url, snowflake_port, name)
    except BaseException:
        results.put({"sync": name, "success": False, "failure": traceback.format_exc()})
        raise
    results.put({"sync": name, "success": success, "failure": failure})


def _materialize(emulator_url: str, snowflake_port: str, name: str) -> tuple[bool, str | None]:
    registry = race_registry()
    os.environ[registry.connection.password_env] = LOCAL_PASSWORD
    for spec in registry.syncs:
        os.environ[spec.feed_key_env] = LOCAL_MPARTICLE.feed_key
    resources = {
        "snowflake": local_snowflake_resource("127.0.0.1", int(snowflake_port)),
        "mparticle": emulator_clock_mparticle(emulator_url),
    }
    [asset] = [a for a in build_sync_assets(registry) if a.key.path[-1] == name]
    result = materialize_partitions([asset], resources=resources)
    return result.success, None if result.success else failure_message(result)
