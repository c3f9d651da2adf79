"""The embedded default: Snowflake stand-in + mParticle emulator + seeded sample warehouse.

:class:`LocalStack` starts both servers on 127.0.0.1 (free ports), seeds the sample warehouse and then
your own tables, if given a seed folder (:mod:`wsync_dagster.local.seed`).
:meth:`LocalStack.environment` is what the local code location needs to run against it
(the ``WSYNC_LOCAL_*`` settings and the registry's secrets), including the sample data's anchor: the code location moves
each schedule's start onto the freshly seeded data (:func:`local_registry`; mParticle refuses hourly
starts older than 7 days, so fixed demo dates would go stale within a week). The demo and ``dg dev``
both use it.

While it runs, a stack describes itself in ``<workdir>/stack.json`` (its process, addresses and
environment; removed when it stops): :func:`running_stack` finds it, so ``python3 dev.py launch`` runs
against the stack ``python3 dev.py ui`` started, and a second stack on the same work directory (and
so the same emulator state file) is refused instead of overwriting the first one's state.
"""

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml
from dateutil.relativedelta import relativedelta

from wsync_dagster.emulator.control import EmulatorControl
from wsync_dagster.local.process import EXIT_WITH_PARENT_FLAG, LocalServiceError, ServiceProcess
from wsync_dagster.local.resources import LOCAL_MPARTICLE
from wsync_dagster.local.sample_data import (
    CUSTOMER_SCORES_DAYS,
    TICKET_ACTIVITY_DAYS,
    SampleConfig,
    SampleSummary,
    seed_sample_warehouse,
)
from wsync_dagster.local.sample_defs import sample_components
from wsync_dagster.local.seed import SeededFile, seed_folder
from wsync_dagster.local.snowflake import (
    LOCAL_ACCOUNT,
    LOCAL_PASSWORD,
    LOCAL_USER,
    LocalSnowflake,
    local_connect_args,
)
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, Schedule, load_registry
from wsync_dagster.sync.registry.workspace import Workspace

EMULATOR_READY_MARKER = "wsync-emulator ready"
# The emulator's state, kept across starts like a real workspace's (demo, then ui, see docs/local.md),
# and the sample anchor whose data its runs extracted.
STATE_FILE = "emulator-state.json"
ANCHOR_FILE = "sample-anchor.txt"
# Present while a stack runs: what `dev.py launch` needs to run against it (see the module doc).
STACK_FILE = "stack.json"


def _at_grid_time(day: datetime, template: datetime) -> datetime:
    """``day``'s date at ``template``'s time of day (UTC)."""
    return day.replace(hour=template.hour, minute=template.minute, second=0, microsecond=0)


def rebase_schedule(schedule: Schedule, anchor: datetime) -> Schedule:
    """``schedule`` moved so that it covers the sample data generated for ``anchor``.

    Keeps the grid's minute, hour, weekday and day of month; only the date moves.
    """
    start = schedule.start
    if schedule.interval == "hourly":
        new_start = (anchor - timedelta(days=TICKET_ACTIVITY_DAYS)).replace(minute=start.minute)
    elif schedule.interval == "weekly":
        first = _at_grid_time(anchor - timedelta(weeks=4), start)
        new_start = first - timedelta(days=(first.weekday() - start.weekday()) % 7)
    elif schedule.interval == "monthly":
        new_start = _at_grid_time(anchor - relativedelta(months=3), start).replace(day=start.day)
    else:  # daily, on_demand, once: the customer table's span
        new_start = _at_grid_time(anchor - timedelta(days=CUSTOMER_SCORES_DAYS), start)
    end = None
    if schedule.end is not None:
        end = max(new_start + (schedule.end - start), new_start + timedelta(hours=1))
        end = min(end, anchor)
    return schedule.model_copy(update={"start": new_start, "end": end})


def local_registry(registry: Registry, anchor: datetime) -> Registry:
    """``registry`` pointed at the local stand-in, its schedules rebased onto ``anchor``."""
    connection = registry.connection.model_copy(
        update={"source_account_id": LOCAL_ACCOUNT, "user": LOCAL_USER}
    )
    syncs = tuple(
        spec.model_copy(update={"schedule": rebase_schedule(spec.schedule, anchor)})
        for spec in registry.syncs
    )
    return registry.model_copy(update={"connection": connection, "syncs": syncs})


def write_registry(registry: Registry, path: Path) -> Path:
    header = (
        "# Written by wsync_dagster.local.stack: a registry of synced tables (see\n"
        "# wsync_dagster/local/defs/warehouse_sync/defs.yaml for the annotated one).\n"
    )
    body = yaml.safe_dump(registry.model_dump(mode="json"), sort_keys=False, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + body, encoding="utf-8")
    return path


def emulator_limit_args(limits: Limits) -> list[str]:
    """The emulator's command-line options enforcing ``limits`` (the registry's, or mParticle's),
    so that the local stack refuses what the team's contracted workspace would."""
    records = [f"--record-limit={name}={n}" for name, n in limits.effective_records().items()]
    return [
        *records,
        f"--max-columns={limits.max_columns}",
        f"--max-active-pipelines={limits.max_active_pipelines}",
    ]


@dataclass(frozen=True)
class RunningStack:
    """A stack another process started on a work directory, read from its ``stack.json``."""

    pid: int
    emulator_url: str
    snowflake_host: str
    snowflake_port: int
    environment: dict[str, str]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_stack(workdir: Path) -> RunningStack | None:
    """The stack running on ``workdir``, if one is: its ``stack.json`` names a live process whose
    emulator answers (a file a killed stack left behind is ignored)."""
    try:
        saved = json.loads((workdir / STACK_FILE).read_text(encoding="utf-8"))
        stack = RunningStack(
            pid=int(saved["pid"]),
            emulator_url=str(saved["emulator_url"]),
            snowflake_host=str(saved["snowflake_host"]),
            snowflake_port=int(saved["snowflake_port"]),
            environment={str(k): str(v) for k, v in saved["environment"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not _alive(stack.pid):
        return None
    try:
        EmulatorControl(stack.emulator_url).clock()
    except Exception:  # refused, timed out, not an emulator: not a stack we can use
        return None
    return stack


def snowflake_address(host: str, port: int) -> str:
    """How to reach the Snowflake stand-in with the Snowflake connector (one line)."""
    args = local_connect_args(host, port)
    return (
        f"host {host}, port {port}, protocol {args['protocol']}, account {args['account']}, "
        f"user {args['user']}, password {args['password']}"
    )


class LocalStack:
    """Start, seed and stop the embedded default. Use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        sample: SampleConfig | None = None,
        registry_source: Path | None = None,
        manual_clock: bool = False,
        run_seconds: float = 0.0,
        seed: Path | None = None,
    ) -> None:
        """``registry_source``: a registry file served instead of the sample registry.
        ``manual_clock``: the emulator's clock starts at the sample anchor and only moves when a
        materialization waits (deterministic, no sleeping); else it is the wall clock.
        ``seed``: a folder of your own tables (``.sql``, ``.csv``), loaded after the sample
        (:func:`wsync_dagster.local.seed.seed_folder`)."""
        self.workdir = workdir
        self.sample_given = sample
        self.sample = sample or SampleConfig()
        self.registry_source = registry_source
        self.manual_clock = manual_clock
        self.run_seconds = run_seconds
        self.seed = seed
        self.seeded: list[SeededFile] = []
        self.snowflake = LocalSnowflake()
        self.emulator: ServiceProcess | None = None
        self.summary: SampleSummary | None = None
        self.registries: list[Registry] = []
        self.state_path = workdir / STATE_FILE
        self.anchor_path = workdir / ANCHOR_FILE
        self.stack_path = workdir / STACK_FILE
        self.fresh = True
        """Whether the emulator started empty (no state kept from an earlier start)."""

    def _continue_or_start_over(self) -> None:
        """Keep the emulator's state file if the warehouse can be seeded as it was (same anchor).

        The persisted runs extracted the sample data of one anchor; re-seeding another would make
        them disagree with the warehouse, so a different or unknown anchor starts over.
        """
        saved = None
        if self.state_path.exists() and self.anchor_path.exists():
            saved = datetime.fromisoformat(self.anchor_path.read_text(encoding="utf-8").strip())
        if saved is not None and (self.sample_given is None or self.sample_given.anchor == saved):
            self.sample = self.sample_given or SampleConfig(anchor=saved)
            self.fresh = False
        else:
            self.state_path.unlink(missing_ok=True)
            self.fresh = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.anchor_path.write_text(self.sample.anchor.isoformat() + "\n", encoding="utf-8")

    def _refuse_a_second_stack(self) -> None:
        if (other := running_stack(self.workdir)) is not None:
            raise LocalServiceError(
                f"a local stack is already running on {self.workdir} (process {other.pid}, "
                f"emulator {other.emulator_url}); two would overwrite each other's emulator state. "
                "Stop it first (Ctrl-C where `python3 dev.py ui` runs), or run a job against it "
                "with `python3 dev.py launch`."
            )

    def start(self) -> Self:
        self._refuse_a_second_stack()
        try:
            self._continue_or_start_over()
            self.snowflake.start()
            connection = self.snowflake.connect()
            try:
                self.summary = seed_sample_warehouse(connection, self.sample)
                if self.seed is not None:
                    self.seeded = seed_folder(connection, self.seed, self.sample.anchor)
            finally:
                connection.close()
            self.registries = self._registries()
            self.emulator = ServiceProcess(
                "mparticle-emulator",
                # One workspace, one set of limits: the first registry's (the sample has one).
                self._emulator_argv(self.registries[0].limits),
                ready_marker=EMULATOR_READY_MARKER,
            )
            self.emulator.start()
            self._write_stack_file()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_stack_file(self) -> None:
        described = {
            "pid": os.getpid(),
            "emulator_url": self.emulator_url,
            "snowflake_host": self.snowflake.host,
            "snowflake_port": self.snowflake.port,
            "environment": self.environment(),
        }
        partial = self.stack_path.with_suffix(".tmp")
        partial.write_text(json.dumps(described, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.stack_path)

    def addresses(self) -> list[str]:
        """Where the stand-ins listen, for people: the lines the demo and the UI print."""
        return [
            f"Snowflake stand-in: {snowflake_address(self.snowflake.host, self.snowflake.port)}",
            f"mParticle emulator: {self.emulator_url}",
        ]

    def _registries(self) -> list[Registry]:
        if self.registry_source is not None:
            return [load_registry(self.registry_source)]
        return [component.registry for component in sample_components()]

    def served_workspace(self) -> Workspace:
        """What the local code location serves: each registry, rebased onto the seeded sample data,
        with its own connection and limits."""
        if not self.registries:
            raise RuntimeError("the local stack is not started")
        return Workspace.of(local_registry(r, self.sample.anchor) for r in self.registries)

    def _emulator_argv(self, limits: Limits) -> list[str]:
        options = {
            "--host": "127.0.0.1",
            "--port": "0",
            "--snowflake-host": self.snowflake.host,
            "--snowflake-port": str(self.snowflake.port),
            "--snowflake-user": LOCAL_USER,
            "--snowflake-password": LOCAL_PASSWORD,
            "--client-id": LOCAL_MPARTICLE.client_id,
            "--client-secret": LOCAL_MPARTICLE.client_secret,
            "--workspace-id": str(LOCAL_MPARTICLE.workspace_id),
            "--org-id": str(LOCAL_MPARTICLE.org_id),
            "--account-id": str(LOCAL_MPARTICLE.account_id),
            "--run-seconds": str(self.run_seconds),
            "--state-file": str(self.state_path),
        }
        if self.manual_clock:
            options |= {"--clock": "manual", "--clock-start": self.sample.anchor.isoformat()}
        flat = [part for option in options.items() for part in option]
        flat += emulator_limit_args(limits)
        return [sys.executable, "-m", "wsync_dagster.emulator", *flat, EXIT_WITH_PARENT_FLAG]

    @property
    def emulator_url(self) -> str:
        if self.emulator is None or self.emulator.url is None:
            raise RuntimeError("the local stack is not started")
        return self.emulator.url

    def environment(self) -> dict[str, str]:
        """Environment variables that point the code location at this stack."""
        secrets = {
            name: value
            for registry in self.registries
            for name, value in [
                (registry.connection.password_env, LOCAL_PASSWORD),
                *((spec.feed_key_env, LOCAL_MPARTICLE.feed_key) for spec in registry.syncs),
            ]
        }
        chosen = {"WSYNC_LOCAL_REGISTRY": str(self.registry_source)} if self.registry_source else {}
        return {
            "WSYNC_LOCAL_SAMPLE_ANCHOR": self.sample.anchor.isoformat(),
            **chosen,
            "WSYNC_LOCAL_SNOWFLAKE_HOST": self.snowflake.host,
            "WSYNC_LOCAL_SNOWFLAKE_PORT": str(self.snowflake.port),
            "WSYNC_LOCAL_EMULATOR_URL": self.emulator_url,
            "WSYNC_LOCAL_EMULATOR_CLOCK": "manual" if self.manual_clock else "real",
            **secrets,
        }

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads(self.stack_path.read_text(encoding="utf-8"))["pid"] == os.getpid():
                self.stack_path.unlink()
        if self.emulator is not None:
            self.emulator.stop()
        self.snowflake.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
