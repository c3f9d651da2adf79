"""The production deployment, run locally: PostgreSQL, code server, daemon and webserver.

:class:`LocalDeployment` starts, in this order, a real PostgreSQL server
(:mod:`~wsync_dagster.local.deploy.postgres`), the embedded default's Snowflake stand-in and mParticle
emulator (:class:`~wsync_dagster.local.stack.LocalStack`), then Dagster's three long-lived processes
exactly as a production deployment runs them: ``dagster code-server start`` (the code location, over
gRPC), ``dagster-daemon run`` and ``dagster-webserver``, all reading ``deploy/dagster.yaml`` and
``deploy/workspace.yaml``. Each Dagster process runs under the guard
(:mod:`~wsync_dagster.local.deploy.guard`), in a process group of its own: stopping the deployment, or
the deployment process dying, stops every group, run workers included.
"""

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import psutil
import yaml

from wsync_dagster.local.deploy.guard import READY_MARKER
from wsync_dagster.local.deploy.postgres import LocalPostgres, free_port, guarded
from wsync_dagster.local.paths import state_root
from wsync_dagster.local.process import LocalServiceError, ServiceProcess
from wsync_dagster.local.sample_data import SampleConfig
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.stack import LocalStack

# The module the code server loads: the one place that names it.
CODE_LOCATION_MODULE = "wsync_dagster.local.definitions"
LOCATION_NAME = "wsync_dagster"
PROJECT_ROOT = state_root()  # holds .wsync/deploy/ (local/paths.py)
# The checkout's deploy/ files (read, never written): `dev.py deploy` runs from a checkout.
DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy"
SERVICES = ("code-server", "daemon", "webserver")


def _bin(name: str) -> str:
    """A console script of this interpreter's environment."""
    return str(Path(sys.executable).parent / name)


class LocalDeployment:
    """Start, restart and stop the local deployment. A context manager."""

    def __init__(
        self,
        workdir: Path,
        *,
        manual_clock: bool = True,
        sample: SampleConfig | None = None,
        registry_source: Path = SAMPLE_REGISTRY,
        webserver_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        instance: Mapping[str, Mapping[str, Any]] | None = None,
        run_seconds: float = 0.0,
    ) -> None:
        """``instance``: sections laid over deploy/dagster.yaml's, key by key (the smoke swaps in
        its crashing run launcher, chaos.py); the deployment otherwise runs that file unchanged.
        ``run_seconds``: how long each mParticle run takes in the emulator (its clock's time)."""
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.home = workdir / "dagster_home"
        self.postgres = LocalPostgres()
        self.stack = LocalStack(
            workdir,
            sample=sample,
            registry_source=registry_source,
            manual_clock=manual_clock,
            run_seconds=run_seconds,
        )
        self.webserver_port = webserver_port
        self.extra_env = dict(extra_env or {})
        self.instance = dict(instance or {})
        self.services: dict[str, ServiceProcess] = {}
        self.env: dict[str, str] = {}
        self._groups: set[int] = set()  # every process group we started, for the final sweep
        self._started = time.time()

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def start(self) -> Self:
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            self.home.mkdir(parents=True, exist_ok=True)
            self._write_instance()
            self.postgres.start()
            self.stack.start()
            self.webserver_port = self.webserver_port or free_port()
            self.env = {
                **os.environ,
                **self.postgres.settings.environment(),
                **self.stack.environment(),
                "DAGSTER_HOME": str(self.home),
                "WSYNC_CODE_SERVER_HOST": "127.0.0.1",
                "WSYNC_CODE_SERVER_PORT": str(free_port()),
                **self.extra_env,
            }
            for name in SERVICES:
                self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_instance(self) -> None:
        target = self.home / "dagster.yaml"
        if not self.instance:
            shutil.copy(DEPLOY_DIR / "dagster.yaml", target)
            return
        config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text(encoding="utf-8"))
        for section, values in self.instance.items():
            config[section] = {**config.get(section, {}), **values}
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def _argv(self, name: str) -> tuple[list[str], str | None, str]:
        """The program, the URL that answers once it is ready, and the URL it serves."""
        workspace = str(DEPLOY_DIR / "workspace.yaml")
        if name == "code-server":
            port = self.env["WSYNC_CODE_SERVER_PORT"]
            program = [
                _bin("dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", port,
                "-m", CODE_LOCATION_MODULE, "--location-name", LOCATION_NAME,
            ]  # fmt: skip
            return program, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
        if name == "daemon":
            return [_bin("dagster-daemon"), "run", "-w", workspace], None, "http://127.0.0.1"
        program = [
            _bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.webserver_port),
            "-w", workspace,
        ]  # fmt: skip
        return program, f"{self.webserver_url}/server_info", self.webserver_url

    def start_service(self, name: str) -> ServiceProcess:
        program, ready_url, announce = self._argv(name)
        service = ServiceProcess(
            name,
            guarded(program, ready_url=ready_url, announce=announce),
            ready_marker=READY_MARKER,
            start_timeout=180.0,
            env=self.env,
            log_path=self.logs / f"{name}.log",
        )
        self.services[name] = service
        service.start()
        self.dagster_pid(name)  # records its process group for the final sweep
        return service

    def dagster_pid(self, name: str) -> int:
        """The pid of Dagster's own process of service ``name`` (the guard's child)."""
        service = self.services[name]
        if service.pid is None:
            raise LocalServiceError(f"{name} is not running")
        children = psutil.Process(service.pid).children()
        if not children:
            raise LocalServiceError(f"{name} has no process (it exited); see {service.log_path}")
        self._groups.add(os.getpgid(children[0].pid))
        return children[0].pid

    def kill_service(self, name: str) -> int:
        """SIGKILL Dagster's process of ``name`` (not its guard), as a crash would; returns its pid."""
        pid = self.dagster_pid(name)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=30)
        self.services.pop(name).stop()
        return pid

    def restart_service(self, name: str, *, kill: bool = False) -> ServiceProcess:
        """Stop ``name`` (SIGKILL with ``kill``, else a graceful stop of its group) and start it."""
        if kill:
            self.kill_service(name)
        else:
            self.services.pop(name).stop(timeout=30.0)
        return self.start_service(name)

    def pids(self) -> set[int]:
        """Every live process of the deployment: guards, Dagster's processes, their children."""
        found: set[int] = set()
        others = (self.postgres.server, self.stack.emulator, self.stack.snowflake)
        roots = [
            s.pid for s in (*self.services.values(), *others) if s is not None and s.pid is not None
        ]
        for pid in roots:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                found |= {pid, *(child.pid for child in process.children(recursive=True))}
        return found

    def stop(self) -> None:
        services = [self.services.pop(name) for name in SERVICES if name in self.services]
        with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:  # each waits on its own
            list(pool.map(lambda service: service.stop(timeout=30.0), services))
        self._sweep_groups()
        self._groups.clear()
        self.stack.stop()
        self.postgres.stop()

    def _sweep_groups(self) -> None:
        """SIGKILL what is left in our process groups, e.g. run workers of a restarted code server.

        Only processes created since this deployment started: a group id is a pid, and pids are
        reused."""
        for process in psutil.process_iter(["pid", "create_time"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                if (
                    os.getpgid(process.pid) in self._groups
                    and process.info["create_time"] >= self._started - 1.0
                ):
                    process.kill()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll ``predicate`` until it returns true; LocalServiceError naming ``what`` after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise LocalServiceError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
