"""``python -m wsync_dagster.local demo|ui``: the embedded default's entry points (see dev.py)."""

import argparse
import sys

from wsync_dagster.local.demo import run_demo, run_ui


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the main job on the embedded default")
    ui = commands.add_parser("ui", help="open the Dagster UI on the embedded default")
    ui.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed to `dagster dev`")
    args = parser.parse_args(argv)
    if args.command == "ui":
        return run_ui(args.dagster_args)
    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
