"""``python -m wsync_dagster.local demo``: the embedded default's entry point (see dev.py)."""

import argparse
import sys

from wsync_dagster.local.demo import run_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the main job on the embedded default")
    parser.parse_args(argv)
    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
