"""``python -m wsync_dagster.local demo|ui|launch|plan``: the embedded default's entry points (dev.py).

Each seeds your own tables after the sample when ``WSYNC_LOCAL_SEED`` names a folder, or
``.wsync/seed/`` exists, and serves the registry file ``WSYNC_LOCAL_REGISTRY`` names instead of the
sample registry when it is set (docs/local.md).
"""

import argparse
import signal
import sys

from wsync_dagster.local.demo import (
    registry_override,
    run_demo,
    run_launch,
    run_ui,
    seed_source,
)
from wsync_dagster.local.plan import run_local_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job on the embedded default")
    demo.add_argument(
        "--manual-clock",
        action="store_true",
        help="run the emulator on a manual clock: waiting advances it (deterministic, no sleeping)",
    )
    ui = commands.add_parser(
        "ui", help="open the Dagster UI on the embedded default; other arguments go to `dg dev`"
    )
    ui.add_argument("dg_args", nargs=argparse.REMAINDER, help="passed to `dg dev` (e.g. -p 3001)")
    launch = commands.add_parser(
        "launch",
        help="`dg launch` on the local code location, against the running `ui` stack if any",
    )
    launch.add_argument(
        "dg_args", nargs=argparse.REMAINDER, help="passed to `dg launch` (e.g. --job ... )"
    )
    commands.add_parser(
        "plan", help="show what a materialization would change (read-only); see docs/plan.md"
    )
    argv = sys.argv[1:] if argv is None else argv
    # SIGTERM unwinds like Ctrl-C, so the local stack's servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if argv[:1] == ["ui"]:
        # Everything after `ui` belongs to `dg dev`: argparse's REMAINDER would reject a leading
        # option such as `-p 3001` as unknown to this parser.
        return run_ui(argv[1:])
    if argv[:1] == ["launch"]:  # the same for `dg launch` (--job ...)
        return run_launch(argv[1:], seed=seed_source(), registry_source=registry_override())
    if argv[:1] == ["plan"]:
        return run_local_plan(argv[1:])  # its own options (--json, --sync, ...)
    args = parser.parse_args(argv)
    return run_demo(
        manual_clock=args.manual_clock, registry_source=registry_override(), seed=seed_source()
    )


if __name__ == "__main__":
    sys.exit(main())
