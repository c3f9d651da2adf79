"""The CI recipe (deploy/ci/wsync-plan.yml, docs/plan.md "In CI") stays true to the plan command.

Nothing here runs GitHub Actions: the workflow's plan command must parse with the command's own
options, give it every production setting, and fail the check on exit code 1 only.
"""

import shlex
from pathlib import Path
from typing import Any

import yaml

from wsync_dagster.cli import production_parser
from wsync_dagster.resources import PRODUCTION_SETTINGS

WORKFLOW = Path(__file__).resolve().parents[1] / "deploy" / "ci" / "wsync-plan.yml"


def steps() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    found = workflow["jobs"]["plan"]["steps"]
    return {step.get("id") or step.get("name") or step.get("uses"): step for step in found}


def test_the_workflow_runs_the_plan_with_options_the_command_knows() -> None:
    plan = steps()["plan"]
    command = "python -m wsync_dagster plan"
    [line] = [text for text in plan["run"].splitlines() if text.startswith(command)]
    words = shlex.split(line)
    argv = words[4 : words.index(">")]
    args = production_parser().parse_args(argv)
    assert args.json and args.allow_missing_secrets and words[-1] == "plan.json"
    required = {s.name for s in PRODUCTION_SETTINGS if s.required}
    assert required <= set(plan["env"])


def test_only_exit_code_1_fails_the_check_and_the_plan_is_posted_either_way() -> None:
    found = steps()
    fail = found["Fail on a problem (exit code 1)"]
    assert fail["if"] == "steps.plan.outputs.code == '1'" and "exit 1" in fail["run"]
    comment = found["Comment"]
    assert comment["if"].startswith("always()")
    assert "jq -r .text plan.json" in comment["run"] and "gh pr comment" in comment["run"]
