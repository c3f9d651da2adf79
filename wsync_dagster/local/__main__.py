"""``python -m wsync_dagster.local demo|ui``: the embedded default's entry points (see dev.py)."""

import argparse
import signal
import sys

from wsync_dagster.local.demo import run_demo, run_ui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job on the embedded default")
    demo.add_argument(
        "--manual-clock",
        action="store_true",
        help="run the emulator on a manual clock: waiting advances it (deterministic, no sleeping)",
    )
    ui = commands.add_parser("ui", help="open the Dagster UI on the embedded default")
    ui.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed to `dagster dev`")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the local stack's servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if args.command == "ui":
        return run_ui(args.dagster_args)
    return run_demo(manual_clock=args.manual_clock)


if __name__ == "__main__":
    sys.exit(main())
