"""``python3 dev.py plan`` on the embedded default (the issue's acceptance cases), and
``python -m wsync_dagster plan`` where it needs no network.

Each local plan starts its own stand-ins on a copy of the state folder; ``before_stop`` reads the
emulator's request log before they stop: a plan sends no POST, PUT or DELETE (but the OAuth token
exchange, which writes nothing in the workspace).
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wsync_dagster.cli import DEFAULT_DEFS_MODULE, plan_production
from wsync_dagster.emulator import EmulatorControl
from wsync_dagster.local.demo import run_demo
from wsync_dagster.local.plan import run_local_plan
from wsync_dagster.local.sample_data import SampleConfig, current_hour
from wsync_dagster.local.sample_defs import SAMPLE_REGISTRY
from wsync_dagster.local.stack import LocalStack, write_registry
from wsync_dagster.sync.registry.limits import Limits
from wsync_dagster.sync.registry.specs import Registry, load_registry

TOKEN_PATH = "/oauth/token"


class Seen:
    """What the plan's emulator was asked, read just before the stand-ins stop."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, stack: LocalStack) -> None:
        self.requests = EmulatorControl(stack.emulator_url).request_log()

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [
            (e["method"], e["path"])
            for e in self.requests
            if e["method"] in ("POST", "PUT", "DELETE") and e["path"] != TOKEN_PATH
        ]


def plan(workdir: Path, *argv: str, registry: Path | None = None) -> tuple[int, str, Seen]:
    seen, out = Seen(), io.StringIO()
    code = run_local_plan(argv, workdir, registry_source=registry, out=out, before_stop=seen)
    assert seen.requests, "the plan's emulator was never asked anything"
    return code, out.getvalue(), seen


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def sample() -> Registry:
    return load_registry(SAMPLE_REGISTRY)


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The state folder right after a demo (its own registry file, the sample's syncs)."""
    base = tmp_path_factory.mktemp("after_demo")
    source = write_registry(sample(), base / "registry.yaml")
    code = run_demo(
        base / "work",
        base / "home",
        SampleConfig(anchor=current_hour()),
        manual_clock=True,
        registry_source=source,
    )
    assert code == 0
    return base / "work", source


def test_a_fresh_state_plans_a_create_of_every_resource_of_the_sample(tmp_path: Path) -> None:
    workdir = tmp_path / ".wsync"
    code, out, seen = plan(workdir, "--json")
    assert code == 2, out
    found = json.loads(out)
    registry = sample()
    assert [s["name"] for s in found["syncs"]] == [s.name for s in registry.syncs]
    for sync in found["syncs"]:
        spec = registry.sync(sync["name"])
        assert [(r["kind"], r["id"], r["action"]) for r in sync["resources"]] == [
            ("connection", registry.connection.id, "create"),
            ("data model", spec.resolved_data_model_id, "create"),
            ("pipeline", spec.resolved_pipeline_id, "create"),
        ]
        assert sync["preflight"]["status"] == "ok" and sync["problems"] == []
    assert found["summary"] == {"create": 19, "update": 0, "unchanged": 0, "problems": 0}
    assert seen.writes == []
    assert not workdir.exists()  # the plan wrote nothing, not even the state folder


def test_right_after_the_demo_there_is_nothing_to_change(after_demo: tuple[Path, Path]) -> None:
    workdir, source = after_demo
    before = tree_digest(workdir)
    code, out, seen = plan(workdir, registry=source)
    assert code == 0, out
    assert "Plan: 0 to create, 0 to update, 19 unchanged; 0 problem(s)." in out
    assert seen.writes == []
    assert tree_digest(workdir) == before


def test_an_edited_sql_is_an_update_naming_the_sync_and_its_sql(
    after_demo: tuple[Path, Path], tmp_path: Path
) -> None:
    workdir, source = after_demo
    registry = load_registry(source)
    spec = registry.sync("customer_scores")
    edited_sql = spec.sql.replace("CHURN_RISK AS", "ROUND(CHURN_RISK, 2) AS")
    edited = registry.model_copy(
        update={
            "syncs": tuple(
                s.model_copy(update={"sql": edited_sql}) if s.name == spec.name else s
                for s in registry.syncs
            )
        }
    )
    code, out, seen = plan(workdir, registry=write_registry(edited, tmp_path / "edited.yaml"))
    assert code == 2, out
    assert "sync customer_scores (daily" in out
    assert "  ~ data model wsync-customer-scores-model: update\n      sql_query:\n" in out
    assert '-  CHURN_RISK AS "churn_risk_score",' in out
    assert '+  ROUND(CHURN_RISK, 2) AS "churn_risk_score",' in out
    assert "Plan: 0 to create, 1 to update, 18 unchanged; 0 problem(s)." in out
    assert seen.writes == []


def test_a_record_limit_under_a_day_of_sample_rows_is_a_problem_with_the_preflight_message(
    tmp_path: Path,
) -> None:
    limited = sample().model_copy(update={"limits": Limits(records_per_request={"daily": 50})})
    source = write_registry(limited, tmp_path / "limited.yaml")
    code, out, seen = plan(tmp_path / ".wsync", registry=source)
    assert code == 1, out
    assert "Pre-flight refused sync 'customer_scores'; nothing was sent to mParticle:" in out
    assert (
        "rows; the registry's daily limit is 50 per request "
        "(limits.records_per_request.daily): the run would fail"
    ) in out
    assert "Exit code 1: a problem" in out
    assert seen.writes == []


def test_the_command_line_prints_only_json_with_json(tmp_path: Path) -> None:
    """What ``python3 dev.py plan --json --sync customer_scores`` runs."""
    command = [sys.executable, "-m", "wsync_dagster.local", "plan", "--json"]
    command += ["--sync", "customer_scores"]
    env = {**os.environ, "WSYNC_HOME": str(tmp_path)}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 2, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert [s["name"] for s in found["syncs"]] == ["customer_scores"]
    assert "Starting the embedded default" in done.stderr
    assert not (tmp_path / ".wsync").exists()


def _args(*argv: str) -> argparse.Namespace:
    return argparse.Namespace(
        json=False, sync=list(argv), max_windows=500, allow_missing_secrets=False,
        defs_module=DEFAULT_DEFS_MODULE,
    )  # fmt: skip


def test_the_real_target_names_every_missing_setting_and_contacts_nothing() -> None:
    args = _args()
    args.defs_module = "wsync_dagster.local.defs"  # the sample's registry
    out = io.StringIO()
    code = plan_production(args, {"MPARTICLE_CLIENT_SECRET": "s3cret-VALUE"}, out)
    text = out.getvalue()
    assert code == 1
    assert "FAILED settings: SNOWFLAKE_ACCOUNT is not set" in text
    assert "MPARTICLE_WORKSPACE_ID is not set" in text
    assert "FAILED registry secrets: MPARTICLE_SNOWFLAKE_PASSWORD is not set" in text
    assert "MPARTICLE_CLIENT_SECRET is not set" not in text and "s3cret-VALUE" not in text
    assert "Exit code 1" in text


def test_a_registry_that_does_not_load_is_exit_code_1(tmp_path: Path) -> None:
    args = _args()
    args.json = True
    args.defs_module = "wsync_dagster_tests.no_such_defs_module"
    out = io.StringIO()
    assert plan_production(args, {}, out) == 1
    found = json.loads(out.getvalue())
    assert found["exit_code"] == 1 and found["syncs"] == []
    assert "the registry does not load" in found["problems"][0]


def test_an_unknown_sync_is_named_with_the_known_ones(tmp_path: Path) -> None:
    seen, stream = Seen(), io.StringIO()
    code = run_local_plan(
        ["--sync", "no_such_sync"], tmp_path / ".wsync", out=stream, before_stop=seen
    )
    out = stream.getvalue()
    assert code == 1 and seen.requests == []  # refused before anything reached mParticle
    assert out.startswith(
        "error: --sync no_such_sync: no such sync; the syncs are: customer_scores"
    )
