"""`python3 dev.py test`'s summary: the failed tests' names and the end of their output, last; and
what a SIGTERM to dev.py does to the command it runs."""

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dev_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wsync_dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAILING = """
def test_passes():
    pass

def test_fails_with_output():
    for i in range(50):
        print(f"printed line {i}")
    assert 1 + 1 == 3, "arithmetic is broken"

class TestGroup:
    def test_errors(self):
        raise RuntimeError("boom in a class")
"""


@pytest.mark.parametrize("workers", [False, True], ids=["one process", "dev.py's workers"])
def test_the_summary_names_each_failed_test_and_ends_with_its_output(
    tmp_path: Path, workers: bool
) -> None:
    tests = tmp_path / "test_sample.py"
    tests.write_text(FAILING, encoding="utf-8")
    report = tmp_path / "junit.xml"
    dev = dev_module()
    # The options dev.py gives pytest, on a file with two failures (run in its own folder, so the
    # project's pytest configuration and conftest stay out of it); the workers report through the
    # controlling process, which writes the report.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests),
         *(dev.PYTEST_WORKERS if workers else []), *dev.junit_options(report)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout

    lines = dev.failed_tests_report(report, tail_lines=5)

    text = "\n".join(lines)
    assert lines[0].startswith("[dev] 2 failed test(s)")
    assert "FAILED test_sample.py::test_fails_with_output" in text
    assert "FAILED test_sample.py::TestGroup::test_errors" in text
    assert "arithmetic is broken" in text and "RuntimeError: boom in a class" in text
    # The end of what the test printed, not its beginning.
    assert "printed line 49" in text and "printed line 40" not in text
    assert "test_passes" not in text and "Captured" not in text


def test_the_summary_says_when_pytest_wrote_no_report(tmp_path: Path) -> None:
    lines = dev_module().failed_tests_report(tmp_path / "missing.xml")
    assert lines == [
        f"[dev] pytest failed before writing {tmp_path / 'missing.xml'}: see its output above"
    ]


# Ends with 7 on SIGTERM; prints its pid once the handler is set.
STOPPABLE = """
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
print("ready", os.getpid(), flush=True)
while True:
    signal.pause()
"""


def test_a_sigterm_to_dev_py_reaches_the_command_it_runs_and_dev_py_ends_with_its_code() -> None:
    """`kill <dev.py>` stops `python3 dev.py ui`'s servers too, instead of orphaning them."""
    runner = (
        "import sys; sys.path.insert(0, sys.argv[1]); import dev; "
        "sys.exit(dev._run([sys.executable, '-c', sys.argv[2]]))"
    )
    wrapper = subprocess.Popen(
        [sys.executable, "-c", runner, str(ROOT), STOPPABLE], stdout=subprocess.PIPE, text=True
    )
    assert wrapper.stdout is not None
    child = None
    try:
        for line in wrapper.stdout:
            if line.startswith("ready "):
                child = int(line.split()[1])
                break
        assert child is not None, "the command never started"
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=60) == 7
    finally:
        wrapper.kill()
        if child is not None:  # on failure, never leave it running
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
