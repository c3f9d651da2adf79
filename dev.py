#!/usr/bin/env python3
"""The project's front door: every README command goes through here.

Needs only Python >= 3.11 and pip. Each command first creates or updates the project's virtual
environment (`.venv/`, installed from `constraints.txt` so every machine resolves the same versions),
then runs inside it:

    python3 dev.py demo    # the main job on the embedded default (local Snowflake + mParticle emulator)
    python3 dev.py test    # ruff, the type checker, pytest, `dg check defs` (both code locations),
                           # then a summary: each step's result and time, each failed test's
                           # name and the end of its output (arguments after `test` go to pytest)
    python3 dev.py ui      # `dg dev` on the embedded default (same DAGSTER_HOME as the demo);
                           # arguments after `ui` go to `dg dev` (e.g. `python3 dev.py ui -p 3001`)
    python3 dev.py launch  # `dg launch` on the embedded default (against the running `ui`, if any);
                           # e.g. `python3 dev.py launch --job wsync_daily_customer_scores_job
                           #  --partition 2026-11-30`
    python3 dev.py plan    # what a materialization would change in the local mParticle, read-only
                           # (exit 0 nothing, 2 changes, 1 a problem; --json, --sync NAME)
    python3 dev.py bench   # the benchmark scripts (they print numbers; nothing is asserted)
    python3 dev.py deploy  # the production deployment, locally (PostgreSQL, daemon, code server)

Standard library only: it runs before anything is installed.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("WSYNC_VENV", ROOT / ".venv"))
STAMP = VENV / ".wsync-install-stamp"
INSTALL_INPUTS = ("pyproject.toml", "constraints.txt", "setup.cfg")
# pytest's report of the last `dev.py test`, read back for the summary that ends its output.
JUNIT_REPORT = ROOT / ".wsync" / "pytest-junit.xml"
# pytest runs the test files on three worker processes (pytest-xdist), each file whole on one worker,
# so a file's tests keep their order and module fixtures. Many tests wait on processes of their own
# (run workers, servers), so a third worker fills the time a core would idle. From fresh clones on a
# 2-core machine, the tests took 7.8 minutes on two workers and 7.1 on three when it was quiet; with
# both cores kept busy by two other processes, 12.1 to 13.3 on two and 10.3 on three. In one process
# they took 10.6 and 16.0. `python3 dev.py test -n 0` runs them in one process (later options win).
PYTEST_WORKERS = ["-n", "3", "--dist", "loadfile"]


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
    started: list[subprocess.Popen[bytes]] = []

    def stop(_signum: int, _frame: object) -> None:
        # A SIGTERM sent to dev.py alone (`kill`, a process manager) goes on to the child, which
        # stops its servers; dev.py then ends with the child's code instead of orphaning it.
        if not started:
            raise SystemExit(128 + signal.SIGTERM)
        started[0].terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        child = subprocess.Popen(argv, cwd=ROOT, env=_activated(env))
        started.append(child)
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # Ctrl-C reached the child too: let it stop its servers cleanly instead of killing it.
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bin(python: Path, name: str) -> str:
    return str(python.parent / name)


def junit_options(report: Path) -> list[str]:
    """pytest options that write ``report`` whatever the other arguments: captured output goes into
    it (``junit_logging``), so the summary can show the end of a failed test's output, and
    ``xunit1`` names each test's file."""
    return ["--junitxml", str(report), "-o", "junit_logging=all", "-o", "junit_family=xunit1"]


def _test_steps(
    python: Path, extra: list[str]
) -> list[tuple[str, list[str], dict[str, str] | None]]:
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
    local_check = [str(python), "-m", "wsync_dagster.local.dg_project", "check", "defs"]
    pytest = [str(python), "-m", "pytest", "-q", *PYTEST_WORKERS, *junit_options(JUNIT_REPORT)]
    return [
        ("ruff check", [_bin(python, "ruff"), "check", "."], None),
        ("ruff format", [_bin(python, "ruff"), "format", "--check", "."], None),
        ("basedpyright", [_bin(python, "basedpyright")], None),
        ("pytest", [*pytest, *extra], None),
        ("dg check defs", [_bin(python, "dg"), "check", "defs"], bare_env),
        ("dg check defs (local)", local_check, bare_env),
    ]


def cmd_test(python: Path, extra: list[str]) -> int:
    """Every check, even after one failed (CI shows them all), then a summary at the very end:
    each step's result and time, and each failed test with the end of its output."""
    JUNIT_REPORT.unlink(missing_ok=True)
    JUNIT_REPORT.parent.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, int, float]] = []
    began = time.monotonic()
    for name, argv, env in _test_steps(python, extra):
        started = time.monotonic()
        code = _run(argv, env=env)
        results.append((name, code, time.monotonic() - started))
    print("\n[dev] ===== summary =====", flush=True)
    for name, code, seconds in results:
        print(f"[dev] {'ok    ' if code == 0 else 'FAILED'} {name} ({_duration(seconds)})")
    pytest_failed = any(name == "pytest" and code != 0 for name, code, _ in results)
    if pytest_failed:
        print("\n".join(failed_tests_report(JUNIT_REPORT)), flush=True)
    failed = [code for _name, code, _seconds in results if code != 0]
    verdict = "all checks passed" if not failed else f"{len(failed)} step(s) failed"
    print(f"[dev] {verdict} in {_duration(time.monotonic() - began)}", flush=True)
    return failed[0] if failed else 0


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s" if seconds >= 60 else f"{seconds:.1f}s"


def _node_id(case: ElementTree.Element) -> str:
    """pytest's node id of a junit ``testcase`` (``xunit1`` gives the file; the ``classname`` is
    ``pkg.module[.Class]``)."""
    classname, name, file = case.get("classname", ""), case.get("name", ""), case.get("file")
    if not file:
        return f"{classname}::{name}"
    module = file.removesuffix(".py").replace("/", ".")
    classes = classname.removeprefix(module).strip(".").split(".")
    return "::".join([file, *filter(None, classes), name])


def _tail(text: str, lines: int) -> list[str]:
    """The last ``lines`` non-blank lines of ``text``, without pytest's "Captured ..." rulers."""
    kept = [
        line
        for line in text.rstrip().splitlines()
        if line.strip() and not re.fullmatch(r"-+ Captured \w+ -+", line.strip())
    ]
    return kept[-lines:]


def failed_tests_report(report: Path, tail_lines: int = 25) -> list[str]:
    """Each failed or erroring test of a pytest junit ``report``: its node id and time, the end
    of its failure (the assertion or exception), and the end of what it printed."""
    if not report.exists():
        return [f"[dev] pytest failed before writing {report}: see its output above"]
    cases = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        problems = [e for e in case if e.tag in ("failure", "error")]
        if problems:
            cases.append((case, problems))
    if not cases:
        return [f"[dev] pytest failed, but {report} lists no failed test: see its output above"]
    lines = [f"[dev] {len(cases)} failed test(s), from {report}:"]
    for case, problems in cases:
        node = _node_id(case)
        seconds = float(case.get("time") or 0.0)
        lines.append(f"\n[dev] FAILED {node} ({_duration(seconds)})")
        for problem in problems:
            detail = problem.text or problem.get("message") or ""
            lines += [f"    {line}" for line in _tail(detail, tail_lines)]
        output = "\n".join(e.text or "" for e in case if e.tag in ("system-out", "system-err"))
        if output.strip():
            lines.append("    --- end of its output ---")
            lines += [f"    {line}" for line in _tail(output, tail_lines)]
    return lines


def main(argv: list[str]) -> int:
    commands = ("demo", "test", "ui", "launch", "plan", "bench", "deploy")
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
