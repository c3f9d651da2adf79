"""The client is plain Python: importing it pulls in no Dagster."""

import subprocess
import sys


def test_importing_the_client_does_not_import_dagster() -> None:
    code = (
        "import sys, wsync_dagster.mparticle; "
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
