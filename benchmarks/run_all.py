"""Run every ``benchmarks/*_bench.py`` in turn (``python3 dev.py bench``); they print, never assert."""

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    wanted = set(argv)
    failed = 0
    for script in sorted(here.glob("*_bench.py")):
        if wanted and script.stem not in wanted:
            continue
        print(f"== {script.name}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
