"""One first materialization in a process of its own, for the first-deploy race tests.

``python -m wsync_dagster_tests.sync.race_worker EMULATOR_URL SNOWFLAKE_PORT SYNC`` materializes
sync ``SYNC`` of :func:`race_registry` against the emulator (on its manual clock) and the Snowflake
stand-in, then prints one JSON line: ``{"sync", "success", "failure"}``.
"""

import json
import os
import sys

from wsync_dagster.local.materialize import emulator_clock_mparticle, materialize_partitions
from wsync_dagster.local.snowflake import LOCAL_PASSWORD
from wsync_dagster.local.stack import LOCAL_MPARTICLE, local_registry
from wsync_dagster.resources import Target, snowflake_resource
from wsync_dagster.sync.assets import build_sync_assets
from wsync_dagster.sync.specs import DEFAULT_REGISTRY, Registry, load_registry
from wsync_dagster_tests.conftest import SAMPLE_ANCHOR
from wsync_dagster_tests.sync.conftest import failure_message

TEMPLATE = "churn_risk_alerts"  # on demand: a materialization triggers its own run


def race_registry(count: int = 5) -> Registry:
    """``count`` on-demand syncs sharing the package's connection, on the sample data."""
    base = local_registry(load_registry(DEFAULT_REGISTRY), SAMPLE_ANCHOR)
    template = base.sync(TEMPLATE)
    syncs = tuple(template.model_copy(update={"name": f"race_{n}"}) for n in range(count))
    return base.model_copy(update={"syncs": syncs})


def main(emulator_url: str, snowflake_port: str, name: str) -> None:
    registry = race_registry()
    os.environ[registry.connection.password_env] = LOCAL_PASSWORD
    for spec in registry.syncs:
        os.environ[spec.feed_key_env] = LOCAL_MPARTICLE.feed_key
    resources = {
        "snowflake": snowflake_resource(
            Target.LOCAL, {"WSYNC_LOCAL_SNOWFLAKE_PORT": snowflake_port}
        ),
        "mparticle": emulator_clock_mparticle(emulator_url),
    }
    [asset] = [a for a in build_sync_assets(registry) if a.key.path[-1] == name]
    result = materialize_partitions([asset], resources=resources)
    failure = None if result.success else failure_message(result)
    print(json.dumps({"sync": name, "success": result.success, "failure": failure}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
