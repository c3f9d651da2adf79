"""Part 2 of ``sync_bench.py``: how long the code location takes to load with 2 and N declared tables.

Registries are written to a temp dir, each loaded in a fresh process (forked from one that has
imported the code location's modules, whose import cost is reported once), timing
``build_definitions`` and ``Definitions.validate_loadable``. POSIX only.

Run alone (``python benchmarks/definition_load.py [--tables 100] [--repeats 5]``) it also times what
reading the models' SQL with sqlglot costs (registry/sql.py: the rules, the tables read, the column
lineage), per model, cold (first time in a process) and cached.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from wsync_dagster.sync.registry.cadences import CADENCES

NAMES = tuple(CADENCES)


def _ratio(b: float, a: float) -> str:
    return f"{b / a:.1f}x" if a else "-"


BASE = datetime(2026, 1, 1, tzinfo=UTC)


def registry_document(tables: int) -> dict[str, Any]:
    """A registry of ``tables`` syncs over every cadence, the first 5 active, the rest paused."""
    syncs = []
    for i in range(tables):
        interval = NAMES[i % len(NAMES)]
        start = BASE + timedelta(days=i % 28, hours=i % 24)
        if interval == "monthly":
            start = BASE.replace(day=1 + i % 28)
        schedule: dict[str, Any] = {
            "interval": interval,
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if interval == "once":
            schedule["end"] = (start + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        syncs.append(
            {
                "name": f"table_{i:03d}",
                "description": f"Synthetic synced table {i} ({interval}).",
                "owners": ["team:bench"],
                "tags": {"domain": f"d{i % 7}"},
                "sql": f'SELECT EMAIL AS "email", SCORE AS "score_{i}", UPDATED_AT '
                f"FROM WSYNC_DEMO.BENCH.TABLE_{i:03d}",
                "load_timestamp": {"column": "UPDATED_AT", "type": "timestamp_ntz"},
                "schedule": schedule,
                "environment": "development",
                "feed_key_env": f"MPARTICLE_FEED_KEY_{i % 3}",
                "paused": i >= 5,
            }
        )
    return {
        "connection": {
            "id": "wsync-snowflake",
            "source_account_id": "xy12345",
            "region": "us-east-1.aws",
            "warehouse": "MPARTICLE_WH",
            "database": "WSYNC_DEMO",
            "role": "MPARTICLE_SYNC",
            "user": "MPARTICLE_SYNC",
            "password_env": "MPARTICLE_SNOWFLAKE_PASSWORD",
        },
        "syncs": syncs,
    }


# A fresh interpreter that imports what the code location imports, once, then forks one child per
# measurement: each child is a fresh process that has never built definitions. It builds the code
# location's definitions with that registry as its one WarehouseSyncComponent, the cold load a code
# server or a run worker does.
DRIVER = r"""
import gc, json, os, sys, time, warnings
started = time.perf_counter()
warnings.simplefilter("ignore")
import dagster as dg
dagster_done = time.perf_counter()
import dagster_snowflake
dagster_snowflake_done = time.perf_counter()
import wsync_dagster.sync.registry.sql  # sqlglot and its Snowflake dialect
sql_done = time.perf_counter()
import wsync_dagster.code_location
done = time.perf_counter()
print(json.dumps({
    "imports": done - started, "dagster": dagster_done - started,
    "dagster_snowflake": dagster_snowflake_done - dagster_done,
    "sql": sql_done - dagster_snowflake_done, "ours": done - sql_done,
}), flush=True)

def measure(path):
    from pathlib import Path
    from wsync_dagster.component import WarehouseSyncComponent
    from wsync_dagster.code_location import build_definitions

    def build():
        return build_definitions(components=[WarehouseSyncComponent.from_registry_file(Path(path))])

    started, cpu_started = time.perf_counter(), time.process_time()
    defs = build()
    built, cpu_built = time.perf_counter(), time.process_time()
    dg.Definitions.validate_loadable(defs)
    validated = time.perf_counter()
    again = build()
    rebuilt = time.perf_counter()
    return {
        "build": built - started, "validate": validated - built, "warm_build": rebuilt - validated,
        "build_cpu": cpu_built - cpu_started,
        "assets": len(list(again.assets or [])), "jobs": len(list(again.jobs or [])),
        "schedules": len(list(again.schedules or [])),
    }

gc.freeze()  # keep the children's garbage collector off the parent's (copy-on-write) pages
for path in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = measure(path)
        except BaseException as error:
            result = {"error": repr(error)}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = json.loads(pipe.read())
    os.waitpid(pid, 0)
    print(json.dumps({"path": path, **result}), flush=True)
"""


@dataclass
class LoadTimes:
    startup: float  # interpreter start and the code location's imports, once
    imports: dict[str, float]  # seconds: all, then dagster, dagster_snowflake, ours
    samples: dict[int, list[dict[str, float]]]

    def median(self, tables: int, key: str) -> float:
        return statistics.median(s[key] for s in self.samples[tables])


def run_definitions(sizes: Sequence[int], repeats: int, workdir: Path) -> LoadTimes:
    paths: dict[str, int] = {}
    for size in sizes:
        path = workdir / f"syncs_{size}.yaml"
        path.write_text(yaml.safe_dump(registry_document(size), sort_keys=False), encoding="utf-8")
        paths[str(path)] = size
    order = [path for _ in range(repeats) for path in paths]  # interleaved: 2, 100, 2, 100, ...
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSYNC_", "MPARTICLE_"))}
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", DRIVER, *order], env=env, stdout=subprocess.PIPE, text=True
    ) as driver:
        assert driver.stdout is not None
        imports = json.loads(driver.stdout.readline())
        startup = time.perf_counter() - started
        samples: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for line in driver.stdout:
            sample = json.loads(line)
            if "error" in sample:
                raise RuntimeError(f"loading {sample['path']} failed: {sample['error']}")
            samples[paths[sample["path"]]].append(sample)
    print(f"  loaded {len(sizes)} registries {repeats}x each", flush=True)
    return LoadTimes(startup, imports, samples)


def report_definitions(times: LoadTimes, repeats: int) -> None:
    small, large = sorted(times.samples)
    print(
        f"\n2. Definition load, {small} vs {large} declared tables (up to 5 active, the rest paused; "
        f"every cadence),\n   a fresh (forked) process each, median of {repeats}"
    )
    print(
        f"{'':44}{f'{small} tables':>12}{f'{large} tables':>12}{'ratio':>9}{'per extra table':>17}"
    )
    rows = (
        ("build_definitions, cold (first in process), s", "build"),
        ("  the same in CPU time (steadier on a busy machine)", "build_cpu"),
        ("Definitions.validate_loadable, s", "validate"),
        ("build_definitions again, warm, s", "warm_build"),
    )
    for label, key in rows:
        a, b = times.median(small, key), times.median(large, key)
        marginal = (b - a) / (large - small) * 1000
        print(f"{label:44}{a:>12.3f}{b:>12.3f}{_ratio(b, a):>9}{marginal:>14.1f} ms")
    counts = {size: times.samples[size][0] for size in (small, large)}
    print(
        "  ({} / {} assets, {} / {} jobs, {} / {} schedules: a job and a schedule per interval "
        "sync, a job per other cadence)".format(
            *(int(counts[n][k]) for k in ("assets", "jobs", "schedules") for n in (small, large))
        )
    )
    imports = times.imports
    print(
        f"  Before any of that, a fresh process spends {times.startup:.2f} s starting and importing "
        f"the code location's\n  modules, whatever the registry: {imports['imports']:.2f} s of "
        f"imports =\n  dagster {imports['dagster']:.2f} s + dagster_snowflake (which imports "
        f"snowflake.core and snowpark) {imports['dagster_snowflake']:.2f} s\n  + registry/sql.py "
        f"(sqlglot) {imports['sql']:.2f} s + wsync_dagster and the rest {imports['ours']:.2f} s."
    )


# One fresh process: the per-model cost of reading SQL with sqlglot, in CPU time.
SQL_DRIVER = r"""
import json, sys, time
started = time.process_time()
from wsync_dagster.sync.registry import sql
imported = time.process_time()
models = json.loads(sys.stdin.read())
def each(function):
    begun = time.process_time()
    for model in models:
        function(model)
    return (time.process_time() - begun) / len(models)
rules = each(sql.sql_problems)  # the registry's rules: tokens only
analysis = each(sql.analyze)  # parse, tables, column lineage: what the translator reads
cached = each(sql.analyze)  # a warm rebuild of the definitions
print(json.dumps({"import": imported - started, "rules": rules, "analysis": analysis,
                  "cached": cached}))
"""


def report_sql(tables: int) -> None:
    """The per-model cost of the SQL reading, on the benchmark registry's models."""
    models = [s["sql"] for s in registry_document(tables)["syncs"]]
    models += [  # and a heavier one: a join over subqueries with expressions
        'SELECT c.CUSTOMER_ID AS "customer_id", c.EMAIL AS "email", '
        f's.SCORE_{i} * 2 AS "score", COALESCE(s.TIER, c.TIER) AS "tier", c.UPDATED_AT '
        "FROM (SELECT * FROM WSYNC_DEMO.CRM.CUSTOMERS WHERE ACTIVE) c "
        f"JOIN WSYNC_DEMO.CRM.SCORES_{i} s ON s.CUSTOMER_ID = c.CUSTOMER_ID "
        "WHERE c.EMAIL IN (SELECT EMAIL FROM WSYNC_DEMO.CRM.ALLOWED)"
        for i in range(tables)
    ]
    found = subprocess.run(
        [sys.executable, "-c", SQL_DRIVER],
        input=json.dumps(models),
        capture_output=True,
        text=True,
        check=True,
    )
    numbers = json.loads(found.stdout)
    print(
        f"\n3. Reading the models' SQL with sqlglot (registry/sql.py), {len(models)} models "
        "(half one-table, half a join over subqueries), CPU time\n"
        f"  import of registry/sql.py and sqlglot, fresh process   {numbers['import']:.2f} s\n"
        f"  the registry's rules (tokens), per model               {numbers['rules'] * 1000:.2f} ms\n"
        f"  parse + tables + column lineage, per model             "
        f"{numbers['analysis'] * 1000:.2f} ms\n"
        f"  the same, cached (a warm rebuild), per model           {numbers['cached'] * 1000:.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--tables", type=int, default=100, help="declared tables vs 2 (default 100)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="fresh loads per registry (median)")
    args = parser.parse_args()
    if args.tables < 3:
        parser.error("--tables must be at least 3 (it is compared with 2)")
    with tempfile.TemporaryDirectory(prefix="wsync-definition-load-") as tmp:
        times = run_definitions((2, args.tables), args.repeats, Path(tmp))
    report_definitions(times, args.repeats)
    report_sql(args.tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
