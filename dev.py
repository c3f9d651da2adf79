#!/usr/bin/env python3
"""The project's front door: every README command goes through here.

Needs only Python >= 3.11 and pip. Each command first creates or updates the project's virtual
environment (`.venv/`, installed from `constraints.txt` so every machine resolves the same versions),
then runs inside it:

    python3 dev.py demo    # the main job on the embedded default (local Snowflake + mParticle emulator)
    python3 dev.py test    # ruff, the type checker, pytest, `dg check defs` (both code locations)
    python3 dev.py ui      # `dg dev` on the embedded default (same DAGSTER_HOME as the demo);
                           # arguments after `ui` go to `dg dev` (e.g. `python3 dev.py ui -p 3001`)
    python3 dev.py plan    # what a materialization would change in the local mParticle, read-only
                           # (exit 0 nothing, 2 changes, 1 a problem; --json, --sync NAME)
    python3 dev.py bench   # the benchmark scripts (they print numbers; nothing is asserted)
    python3 dev.py deploy  # the production deployment, locally (PostgreSQL, daemon, code server)

Standard library only: it runs before anything is installed.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("WSYNC_VENV", ROOT / ".venv"))
STAMP = VENV / ".wsync-install-stamp"
INSTALL_INPUTS = ("pyproject.toml", "constraints.txt", "setup.cfg")


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _install_fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for name in INSTALL_INPUTS:
        path = ROOT / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """Create `.venv` if missing and (re)install the project when its inputs changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 the machine has
        sys.exit(f"wsync_dagster needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    python = _venv_python()
    if not python.exists():
        print(f"[dev] creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return python
    print(
        "[dev] installing wsync_dagster[dev] from constraints.txt (first run: ~2 minutes)",
        flush=True,
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            "-e",
            f"{ROOT}[dev]",
        ],
        check=True,
    )
    STAMP.write_text(fingerprint)
    return python


def _activated(env: dict[str, str] | None) -> dict[str, str]:
    """``env`` (default: ours) as if the project's venv were activated: `dg` then finds the venv it
    expects instead of warning that none is active."""
    env = dict(os.environ if env is None else env)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = os.pathsep.join([str(_venv_python().parent), env.get("PATH", "")])
    return env


def _run(argv: list[str], env: dict[str, str] | None = None) -> int:
    print(f"[dev] $ {' '.join(argv)}", flush=True)
    child = subprocess.Popen(argv, cwd=ROOT, env=_activated(env))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the child too: let it stop its servers cleanly instead of killing it.
            continue


def _bin(python: Path, name: str) -> str:
    return str(python.parent / name)


def cmd_test(python: Path, extra: list[str]) -> int:
    steps: list[list[str]] = [
        [_bin(python, "ruff"), "check", "."],
        [_bin(python, "ruff"), "format", "--check", "."],
        [_bin(python, "basedpyright")],
        [str(python), "-m", "pytest", "-q", *extra],
    ]
    for step in steps:
        if (code := _run(step)) != 0:
            return code
    # Both code locations (production, and the local one `dev.py ui` opens) must load from a
    # completely empty environment: no settings, no secrets.
    bare_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WSYNC_", "MPARTICLE_", "SNOWFLAKE_"))
    }
    # `dg check defs` checks the project's defs.yaml files against the component's schema, then
    # loads and validates the production code location (`[tool.dg]`). The local code location
    # (its own defs folder, the sample) gets the same check through a second dg project.
    if (code := _run([_bin(python, "dg"), "check", "defs"], env=bare_env)) != 0:
        return code
    local_check = [str(python), "-m", "wsync_dagster.local.dg_project", "check", "defs"]
    return _run(local_check, env=bare_env)


def main(argv: list[str]) -> int:
    commands = ("demo", "test", "ui", "plan", "bench", "deploy")
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    python = ensure_venv()
    if command == "test":
        return cmd_test(python, extra)
    if command == "bench":
        return _run([str(python), str(ROOT / "benchmarks" / "run_all.py"), *extra])
    if command == "deploy":
        return _run([str(python), "-m", "wsync_dagster.local.deploy", *extra])
    return _run([str(python), "-m", "wsync_dagster.local", command, *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
