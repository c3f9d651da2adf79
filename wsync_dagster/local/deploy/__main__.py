"""``python -m wsync_dagster.local.deploy [--smoke]`` (``python3 dev.py deploy``).

See docs/deploy.md."""

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from wsync_dagster.local.deploy.cluster import PROJECT_ROOT, LocalDeployment
from wsync_dagster.local.deploy.graphql import ready_api
from wsync_dagster.local.deploy.smoke import run_smoke


def serve(workdir: Path, manual_clock: bool, port: int | None) -> int:
    with LocalDeployment(workdir, manual_clock=manual_clock, webserver_port=port) as deployment:
        ready_api(deployment)
        print(f"[deploy] Dagster UI: {deployment.webserver_url}", flush=True)
        pg = deployment.postgres.settings
        print(f"[deploy] PostgreSQL: {pg.user}@{pg.host}:{pg.port}/{pg.database}", flush=True)
        print(f"[deploy] logs: {deployment.logs}; Ctrl-C stops everything", flush=True)
        while all(s.running for s in deployment.services.values()):
            time.sleep(1.0)
        stopped = [name for name, s in deployment.services.items() if not s.running]
        print(f"[deploy] {', '.join(stopped)} exited; stopping (logs: {deployment.logs})")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wsync_dagster.local.deploy")
    parser.add_argument("--smoke", action="store_true", help="exercise it, judge it, stop it")
    parser.add_argument("--partitions", type=int, default=24, help="hourly backfill (smoke)")
    parser.add_argument("--real-clock", action="store_true", help="emulator on the wall clock")
    parser.add_argument("--port", type=int, help="webserver port (default: a free one)")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".wsync" / "deploy")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process of the deployment is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    try:
        if args.smoke:
            with tempfile.TemporaryDirectory(prefix="wsync-deploy-") as workdir:
                return run_smoke(Path(workdir), args.partitions)
        return serve(args.workdir, manual_clock=not args.real_clock, port=args.port)
    except KeyboardInterrupt:
        print("[deploy] stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
