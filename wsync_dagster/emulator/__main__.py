"""``python -m wsync_dagster.emulator``: the emulator as its own process.

Prints one line, ``wsync-emulator ready http://HOST:PORT``, on stdout once it accepts connections
(the readiness protocol its launcher waits for); logs go to stderr. SIGTERM or
SIGINT stops it cleanly (the HTTP server, then the run worker).
"""

import argparse
import logging
import signal
import sys
import threading
from datetime import datetime
from types import FrameType

from wsync_dagster.emulator.clock import parse_iso_instant
from wsync_dagster.emulator.config import EmulatorConfig
from wsync_dagster.emulator.lifecycle import (
    EXIT_WITH_PARENT_FLAG,
    READY_MARKER,
    exit_when_parent_exits,
)
from wsync_dagster.emulator.limits import SCHEDULE_INTERVALS
from wsync_dagster.emulator.server import EmulatorServer


def _instant(value: str) -> datetime:
    try:
        return parse_iso_instant(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 instant with a zone: {value}") from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value}")
    return int(value)


def _record_limit(value: str) -> tuple[str, int]:
    interval, _, records = value.partition("=")
    if interval not in SCHEDULE_INTERVALS:
        raise argparse.ArgumentTypeError(
            f"{value}: expected SCHEDULE=RECORDS with SCHEDULE one of {', '.join(SCHEDULE_INTERVALS)}"
        )
    return interval, _positive(records)


def parse_args(argv: list[str] | None = None) -> tuple[EmulatorConfig, bool]:
    """The emulator's settings, and whether to stop when stdin closes (the parent is gone)."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m wsync_dagster.emulator",
        description="Local mParticle emulator (Warehouse Sync, SSO token and Profile API).",
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="interface to bind (default loopback)")
    add("--port", type=int, default=defaults.port, help="port to bind; 0 picks a free one")
    add("--snowflake-host", default=defaults.snowflake_host, help="the warehouse's host")
    add("--snowflake-port", type=int, required=True, help="the warehouse's port")
    add("--snowflake-account", default=defaults.snowflake_account, help="the warehouse's account")
    add("--snowflake-user", default=defaults.snowflake_user, help="the user it accepts")
    add("--snowflake-password", default=defaults.snowflake_password, help="the password it accepts")
    add("--client-id", default=defaults.client_id)
    add("--client-secret", default=defaults.client_secret)
    add("--workspace-id", type=int, default=defaults.workspace_id)
    add("--org-id", type=int, default=defaults.org_id)
    add("--account-id", type=int, default=defaults.account_id)
    add("--token-ttl", type=int, default=defaults.token_ttl, help="token lifetime (seconds)")
    add(
        "--run-seconds",
        type=float,
        default=defaults.run_seconds,
        help="simulated run duration on the emulator clock (seconds)",
    )
    add("--clock", choices=("real", "manual"), default=defaults.clock)
    add("--clock-start", type=_instant, default=None, help="initial clock time (ISO-8601)")
    add("--seed", type=int, default=defaults.seed, help="seed of the MPID generator")
    add(
        "--record-limit",
        type=_record_limit,
        action="append",
        default=[],
        metavar="SCHEDULE=RECORDS",
        help="records one run of that schedule_interval may extract (repeatable), e.g. hourly=10",
    )
    add("--max-columns", type=_positive, default=defaults.max_model_columns)
    add("--max-active-pipelines", type=_positive, default=defaults.max_active_pipelines)
    add(
        "--state-file",
        default=None,
        help="JSON file to load the state from at start and save it to as runs end and at stop",
    )
    add(EXIT_WITH_PARENT_FLAG, action="store_true", help="stop when stdin closes (parent gone)")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        snowflake_host=args.snowflake_host,
        snowflake_port=args.snowflake_port,
        snowflake_account=args.snowflake_account,
        snowflake_user=args.snowflake_user,
        snowflake_password=args.snowflake_password,
        client_id=args.client_id,
        client_secret=args.client_secret,
        workspace_id=args.workspace_id,
        org_id=args.org_id,
        account_id=args.account_id,
        token_ttl=args.token_ttl,
        run_seconds=args.run_seconds,
        clock=args.clock,
        clock_start=args.clock_start,
        seed=args.seed,
        record_limits={**defaults.record_limits, **dict(args.record_limit)},
        max_model_columns=args.max_columns,
        max_active_pipelines=args.max_active_pipelines,
        state_file=args.state_file,
    )
    return config, args.exit_with_parent


def main(argv: list[str] | None = None) -> int:
    config, exit_with_parent = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if exit_with_parent:
        exit_when_parent_exits(stop.set)
    with EmulatorServer(config) as server:
        # The readiness protocol, not a log line.
        print(f"{READY_MARKER} {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
