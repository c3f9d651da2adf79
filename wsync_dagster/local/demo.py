"""The main job on the embedded default: ``python3 dev.py demo``.

Starts the local Snowflake stand-in, seeds the sample warehouse, shows what it holds, and stops
everything. Exit code 0 on success; on any failure a one-paragraph explanation and a non-zero code.
"""

import sys
import time

from wsync_dagster.local.process import LocalServiceError
from wsync_dagster.local.sample_data import SampleConfig, seed_sample_warehouse
from wsync_dagster.local.snowflake import LocalSnowflake


def run_demo() -> int:
    started = time.monotonic()
    print("Starting the local Snowflake stand-in (fakesnow on 127.0.0.1) ...", flush=True)
    try:
        with LocalSnowflake() as snowflake:
            print(f"  listening at {snowflake.url}")
            connection = snowflake.connect()
            try:
                summary = seed_sample_warehouse(connection, SampleConfig())
                print(f"Seeded the sample warehouse (anchor {summary.anchor:%Y-%m-%d %H:%M} UTC):")
                cursor = connection.cursor()
                for table in summary.tables:
                    (count,) = cursor.execute(f"SELECT COUNT(*) FROM {table.name}").fetchone()
                    print(
                        f"  {table.name:<36} {count:>6} rows, {table.identityless_rows} without "
                        f"identity, {table.boundary_rows} on interval boundaries, "
                        f"{table.first_updated_at:%Y-%m-%d %H:%M} .. {table.last_updated_at:%Y-%m-%d %H:%M}"
                    )
                    for row in cursor.execute(f"SELECT * FROM {table.name} LIMIT 2").fetchall():
                        print(f"      {row}")
            finally:
                connection.close()
    except LocalServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Stopped the local stack. Done in {time.monotonic() - started:.1f} s.")
    return 0
