"""``python -m wsync_dagster plan``: the read-only plan of the production code location's syncs
(see :mod:`wsync_dagster.cli` and docs/plan.md)."""

import sys

from wsync_dagster.cli import main

if __name__ == "__main__":
    sys.exit(main())
