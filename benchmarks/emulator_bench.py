"""Benchmark of the mParticle emulator against the local Snowflake stand-in. Prints numbers only.

1. Seconds to reject a 1,000,001-row hourly window on the record limit (target < 5 s: the count
   query alone, nothing extracted).
2. Ingest rate for a 100,000-row on-demand window, end to end (count, extraction, mapping, profile
   upserts), in rows/s (target >= 20,000 rows/s on 2 cores).
3. Peak memory (VmHWM of the emulator process, above its RSS when the run starts) while ingesting
   100,000 vs 400,000 rows: it must not grow with the window. The rows cycle over 10,000 e-mails, so
   the profile store ends the same size.

Run: ``python benchmarks/emulator_bench.py`` (the emulator runs as its own process, as in the demo).
"""

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from wsync_dagster.emulator import READY_MARKER, EmulatorControl
from wsync_dagster.local.process import ServiceProcess
from wsync_dagster.local.snowflake import LOCAL_PASSWORD, LOCAL_USER, LocalSnowflake

CLOCK_START = "2026-11-28T12:00:00Z"
WINDOW = "'2026-11-28 10:00:00'"  # every generated row sits in 10:00..11:00
PROFILES = 10_000
TIMEOUT = 600


def create_table(cursor: Any, name: str, rows: int) -> float:
    started = time.perf_counter()
    cursor.execute(
        f"CREATE OR REPLACE TABLE BENCH.PUBLIC.{name} (CUSTOMER_ID VARCHAR, EMAIL VARCHAR, "
        "SCORE FLOAT, PLAN VARCHAR, ACTIVE BOOLEAN, UPDATED_AT TIMESTAMP_NTZ)"
    )
    cursor.execute(
        f"INSERT INTO BENCH.PUBLIC.{name} SELECT 'C' || (SEQ4() % {PROFILES}), "
        f"'u' || (SEQ4() % {PROFILES}) || '@example.com', UNIFORM(0::FLOAT, 1::FLOAT, RANDOM()), "
        "'gold', TRUE, DATEADD(SECOND, SEQ4() % 3600, "
        f"{WINDOW}::TIMESTAMP_NTZ) FROM TABLE(GENERATOR(ROWCOUNT => {rows}))"
    )
    return time.perf_counter() - started


class Emulator:
    """An emulator child process plus a token-carrying session for its API."""

    def __init__(self, process: ServiceProcess, url: str) -> None:
        self.process = process
        self.url = url
        self.control = EmulatorControl(url)
        self.ws = f"{url}/platform/experimental/workspaces/5328/inputs/warehouse"
        self.session = requests.Session()
        token = self.session.post(
            f"{url}/oauth/token",
            json={
                "client_id": "local-client",
                "client_secret": "local-secret",
                "audience": "https://api.mparticle.com",
                "grant_type": "client_credentials",
            },
            timeout=TIMEOUT,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.ws}/{path}", json=body, timeout=TIMEOUT)
        response.raise_for_status()
        return response.json() if response.content else None

    def sync(
        self, table: str, interval: str, start: str, end: str | None = None
    ) -> tuple[dict[str, Any], float]:
        """Create a pipeline over ``table``, run its window(s); (latest run, seconds to settle)."""
        pipeline_id = table.lower()
        self.call("POST", "data-models", {
            "id": pipeline_id, "name": table, "workspace_id": 5328, "type": "sql",
            "sql_query": f"SELECT * FROM BENCH.PUBLIC.{table}",
            "load_timestamp_field_name": "UPDATED_AT", "load_timestamp_field_type": "timestamp_ntz",
        })  # fmt: skip
        self.call("POST", "pipelines", {
            "id": pipeline_id, "name": table, "workspace_id": 5328, "is_active": True,
            "is_draft": False, "connection_id": "bench", "data_model_id": pipeline_id,
            "partner_feed_key": "us1-bench", "schedule_interval": interval,
            "schedule_start_time": start, "schedule_end_time": end, "environment": "development",
        })  # fmt: skip
        if interval == "on_demand":
            self.call("POST", f"pipelines/{pipeline_id}")
        started = time.perf_counter()
        self.control.settle()
        elapsed = time.perf_counter() - started
        run = self.call("GET", f"pipelines/{pipeline_id}/status")["latest_pipeline_run"]
        # Free the active-pipeline slot for the next measurement.
        self.call("DELETE", f"pipelines/{pipeline_id}")
        return run, elapsed

    def peak_rss_mib(self) -> float:
        return _status_kib(self.process.pid, "VmHWM") / 1024

    def reset_peak_rss(self) -> None:
        # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


def _status_kib(pid: int | None, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def main() -> int:
    with LocalSnowflake() as stand_in:
        connection = stand_in.connect()
        cursor = connection.cursor()
        cursor.execute("CREATE DATABASE IF NOT EXISTS BENCH")
        cursor.execute("CREATE SCHEMA IF NOT EXISTS BENCH.PUBLIC")
        print(f"seeded 1,000,001 rows in {create_table(cursor, 'ROWS_1M', 1_000_001):.2f} s")
        create_table(cursor, "ROWS_100K", 100_000)
        create_table(cursor, "ROWS_400K", 400_000)
        connection.close()

        argv = [
            sys.executable, "-m", "wsync_dagster.emulator", "--port", "0",
            "--snowflake-host", stand_in.host, "--snowflake-port", str(stand_in.port),
            "--clock", "manual", "--clock-start", CLOCK_START,
        ]  # fmt: skip
        with ServiceProcess("emulator", argv, ready_marker=READY_MARKER) as process:
            assert process.url is not None
            emulator = Emulator(process, process.url)
            emulator.call("POST", "connections", {
                "id": "bench", "name": "Bench", "workspace_id": 5328, "type": "snowflake",
                "source_account_id": "bench", "region": "local", "warehouse": "wh",
                "database": "BENCH", "role": "r", "user": LOCAL_USER, "password": LOCAL_PASSWORD,
            })  # fmt: skip

            run, seconds = emulator.sync(
                "ROWS_1M", "hourly", "2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z"
            )
            print(
                f"1. limit rejection: {seconds:.2f} s for the 1,000,001-row hourly window "
                f"(state {run['pipeline_run_state']}, extracted {run['records_extracted']}) "
                "[target < 5 s]"
            )

            peaks: dict[int, float] = {}
            for rows in (100_000, 400_000):
                emulator.reset_peak_rss()
                before = _status_kib(process.pid, "VmRSS") / 1024
                table = f"ROWS_{rows // 1000}K"
                run, seconds = emulator.sync(table, "on_demand", "2026-11-28T09:00:00Z")
                peaks[rows] = emulator.peak_rss_mib()
                assert run["records_extracted"] == rows, run
                print(
                    f"2. ingest {rows:,} rows: {seconds:.2f} s = {rows / seconds:,.0f} rows/s "
                    f"(mapped {run['records_mapped']:,}, profiles {PROFILES:,}) "
                    "[target >= 20,000 rows/s]"
                )
                peaks[rows] -= before
                print(
                    f"3. emulator RSS {before:.0f} MiB before ingesting {rows:,} rows, peak "
                    f"+{peaks[rows]:.0f} MiB above that while ingesting"
                )
            growth = peaks[400_000] - peaks[100_000]
            print(
                "3. the peak above the starting RSS grows by "
                f"{growth:+.0f} MiB from 100,000 to 400,000 rows [must not grow with the window]"
            )
    print(f"finished {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z")
    return 0


if __name__ == "__main__":
    sys.exit(main())
