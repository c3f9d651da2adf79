"""``python3 dev.py plan``: the read-only plan on the embedded default.

Starts the stand-ins with the persisted local state (``.wsync/``, as ``dev.py demo`` and ``ui`` left
it), plans every sync of the local code location exactly as ``python -m wsync_dagster plan`` plans
the production one (:func:`wsync_dagster.cli.plan_components`), prints it and stops them. The
emulator runs on a *copy* of the state in a temporary folder: the plan writes nothing, and mParticle's
own scheduling while the copy runs (the emulator catching up intervals on its clock) leaves
``.wsync/`` as it was too. With no state kept, the plan is that of a fresh workspace.
"""

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from wsync_dagster.cli import plan_components, plan_parser, refuse, report, secrets_check
from wsync_dagster.code_location import registry_secrets
from wsync_dagster.local.definitions import local_sync_components
from wsync_dagster.local.demo import WORKDIR, _environment
from wsync_dagster.local.process import LocalServiceError
from wsync_dagster.local.resources import local_resources
from wsync_dagster.local.stack import ANCHOR_FILE, STATE_FILE, LocalStack
from wsync_dagster.sync.engine.plan import Check
from wsync_dagster.sync.registry.specs import RegistryError


def copy_state(workdir: Path, scratch: Path) -> bool:
    """Copy the local mParticle's state and the sample anchor from ``workdir`` into ``scratch``;
    whether there was a state to copy."""
    copied = False
    for name in (STATE_FILE, ANCHOR_FILE):
        if (workdir / name).exists():
            shutil.copy2(workdir / name, scratch / name)
            copied = copied or name == STATE_FILE
    return copied


def run_local_plan(
    argv: Sequence[str],
    workdir: Path = WORKDIR,
    *,
    registry_source: Path | None = None,
    out: TextIO = sys.stdout,
    before_stop: Callable[[LocalStack], None] | None = None,
) -> int:
    """Plan the local code location against the stand-ins started on a copy of ``workdir``'s
    state; the plan's exit code. ``registry_source`` replaces the sample registry (as
    ``WSYNC_LOCAL_REGISTRY`` does); ``before_stop`` sees the stack after the plan (tests read
    the emulator's request log there)."""
    args: argparse.Namespace = plan_parser("python3 dev.py plan").parse_args(list(argv))
    with tempfile.TemporaryDirectory(prefix="wsync-plan-") as scratch:
        kept = copy_state(workdir, Path(scratch))
        state = f"the state in {workdir}" if kept else "no kept state: a fresh workspace"
        sys.stderr.write(f"Starting the embedded default on a copy of {state} ...\n")
        try:
            with LocalStack(Path(scratch), registry_source=registry_source) as stack:
                environment = stack.environment()
                with _environment(environment):
                    components = local_sync_components(environment)
                    secrets = registry_secrets(c.registry for c in components)
                    checks = (
                        Check("settings", True, "set by the local stack"),
                        secrets_check(components, environment, args.allow_missing_secrets),
                    )
                    resources = local_resources(environment, secrets)
                    plan = plan_components(components, resources, args, checks)
                if before_stop is not None:
                    before_stop(stack)
        except (LocalServiceError, RegistryError) as error:
            return refuse(str(error), args.json, out)
    if isinstance(plan, str):
        return refuse(plan, args.json, out)
    return report(plan, args.json, out)
