"""``python -m wsync_dagster plan``: what materializing the registry's syncs would do, read-only.

For every sync of every ``WarehouseSyncComponent`` of the production defs folder (``--defs-module``
for another one): each mParticle resource's action and drift, the pre-flight's verdict over the
windows a materialization would sync, what mParticle would refuse, and the pipelines no registry
declares. It is also the "check my credentials" command: it fetches a token, reads the workspace,
logs in to Snowflake and checks that every secret the registries name is set, and says which of
these failed (never a value). The engine is :mod:`wsync_dagster.sync.engine.plan`; docs/plan.md is
the reference (output, JSON schema, exit codes, the CI recipe). ``python3 dev.py plan`` runs the
same on the embedded default (:mod:`wsync_dagster.local.plan`).

Exit codes as terraform's ``-detailed-exitcode``: 0 nothing to change, 2 changes pending, 1 a
problem (a check failed, a materialization would be refused, or the registry does not load).
"""

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import dagster as dg

from wsync_dagster.code_location import defs_tree, registry_secrets, sync_components
from wsync_dagster.component import WarehouseSyncComponent, workspace_of
from wsync_dagster.resource_safety import url_setting_problems
from wsync_dagster.resources import (
    PRODUCTION_SETTINGS,
    MParticleResource,
    mparticle_resource,
    secret_problems,
    settings_problems,
    snowflake_resource,
)
from wsync_dagster.sync.engine.plan import (
    MAX_WINDOWS,
    Check,
    WorkspacePlan,
    failed_checks_problems,
    plan_workspace,
)
from wsync_dagster.sync.engine.plan_report import document, render_text

# A plan is interactive (or a CI step): it gives up on an unreachable mParticle after this long
# instead of the 300 s a materialization's call may spend retrying.
PLAN_RETRY_BUDGET_SECONDS = 30.0
PLAN_MAX_ATTEMPTS = 4
DEFAULT_DEFS_MODULE = "wsync_dagster.defs"


def plan_parser(prog: str) -> argparse.ArgumentParser:
    """The ``plan`` command's options (shared by ``python -m wsync_dagster plan`` and
    ``python3 dev.py plan``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Show what materializing the registry's syncs would change in mParticle and "
        "what their pre-flight would say; writes nothing. Exit code: 0 nothing to change, 2 "
        "changes pending, 1 a problem (see docs/plan.md).",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (schema: docs/plan.md)"
    )
    parser.add_argument(
        "--sync",
        action="append",
        default=[],
        metavar="NAME",
        help="plan only this sync (repeatable); default: every sync",
    )
    parser.add_argument(
        "--max-windows",
        type=int,
        default=MAX_WINDOWS,
        metavar="N",
        help=f"pre-flight at most the N latest pending windows of a sync (default {MAX_WINDOWS})",
    )
    parser.add_argument(
        "--allow-missing-secrets",
        action="store_true",
        help="report registry secrets that are not set without failing (a CI job planning a pull "
        "request with read-only credentials has no write secrets)",
    )
    return parser


def _where(component: WarehouseSyncComponent) -> dict[str, str]:
    """Each sync's name -> ``folder/defs.yaml:line`` (where the component declares it)."""
    path = component.yaml_path
    if path is None:
        return {}
    found = {}
    for spec in component.registry.syncs:
        line = component.lines.get(spec.name)
        found[spec.name] = f"{path.parent.name}/{path.name}" + (f":{line}" if line else "")
    return found


def secrets_check(
    components: Sequence[WarehouseSyncComponent], environ: Mapping[str, str], allow_missing: bool
) -> Check:
    """Whether every secret the registries name (``password_env``, ``feed_key_env``) is set."""
    secrets = registry_secrets(c.registry for c in components)
    missing = secret_problems(secrets, environ)
    if not missing:
        names = ", ".join(secrets) or "none named"
        return Check("registry secrets", True, f"{len(secrets)} set ({names})")
    text = "; ".join(missing)
    if allow_missing:
        return Check("registry secrets", True, f"not checked (--allow-missing-secrets): {text}")
    return Check("registry secrets", False, text)


def _limited(mparticle: MParticleResource) -> MParticleResource:
    return mparticle.model_copy(
        update={
            "retry_budget_seconds": min(mparticle.retry_budget_seconds, PLAN_RETRY_BUDGET_SECONDS),
            "max_attempts": min(mparticle.max_attempts, PLAN_MAX_ATTEMPTS),
        }
    )


def plan_components(
    components: Sequence[WarehouseSyncComponent],
    resources: Mapping[str, object],
    args: argparse.Namespace,
    checks: Sequence[Check] = (),
) -> WorkspacePlan | str:
    """The plan of ``components`` with ``resources`` (the ``snowflake`` and ``mparticle`` keys of a
    code location, set up here as Dagster sets them up for a run); a message instead when the
    arguments name no such sync."""
    workspace = workspace_of(components)
    names = [b.name for b in workspace]
    if unknown := [n for n in args.sync if n not in names]:
        return f"--sync {', '.join(unknown)}: no such sync; the syncs are: {', '.join(names) or 'none'}"
    if args.max_windows < 1:
        return f"--max-windows {args.max_windows}: give a positive number"
    where = {name: at for component in components for name, at in _where(component).items()}
    with dg.build_resources(dict(resources)) as built:
        mparticle = built.mparticle
        assert isinstance(mparticle, MParticleResource)
        with _limited(mparticle).open_client() as client:
            return plan_workspace(
                client,
                built.snowflake,
                workspace,
                mparticle.now,
                selected=args.sync,
                where=where,
                checks=checks,
                max_windows=args.max_windows,
            )


def report(plan: WorkspacePlan, as_json: bool, out: TextIO) -> int:
    """Print the plan (text, or the JSON document) to ``out``; its exit code."""
    if as_json:
        out.write(json.dumps(document(plan), indent=2) + "\n")
    else:
        out.write(render_text(plan) + "\n")
    out.flush()
    return plan.exit_code


def refuse(message: str, as_json: bool, out: TextIO) -> int:
    """A plan that could not start (the registry does not load, a bad argument): exit code 1."""
    if as_json:
        body: dict[str, Any] = {"version": 1, "exit_code": 1, "syncs": [], "problems": [message]}
        out.write(json.dumps(body | {"text": message}, indent=2) + "\n")
    else:
        out.write(f"error: {message}\n")
    return 1


def plan_production(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, out: TextIO = sys.stdout
) -> int:
    """The plan on the real target: the defs folder ``args.defs_module``, the settings and
    secrets of ``environ`` (default os.environ, where ``dagster.EnvVar`` reads them too)."""
    environ = os.environ if environ is None else environ
    try:
        module = importlib.import_module(args.defs_module)
        components = sync_components(defs_tree(module))
    except Exception as error:  # any load failure is the registry's problem to report
        return refuse(f"the registry does not load:\n{error}", args.json, out)
    problems = settings_problems(PRODUCTION_SETTINGS, environ) + url_setting_problems(environ)
    secrets = secrets_check(components, environ, args.allow_missing_secrets)
    if problems:
        checks = (Check("settings", False, "; ".join(problems)), secrets)
        failed = WorkspacePlan(None, None, checks, (), problems=failed_checks_problems(checks))
        return report(failed, args.json, out)
    checks = (Check("settings", True, "every production setting is set"), secrets)
    resources = {"snowflake": snowflake_resource(environ), "mparticle": mparticle_resource(environ)}
    plan = plan_components(components, resources, args, checks)
    if isinstance(plan, str):
        return refuse(plan, args.json, out)
    return report(plan, args.json, out)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "plan":
        sys.stderr.write(
            "usage: python -m wsync_dagster plan [--json] [--sync NAME ...] [--defs-module M]\n"
        )
        return 1
    return plan_production(production_parser().parse_args(argv[1:]))


def production_parser() -> argparse.ArgumentParser:
    """``python -m wsync_dagster plan``'s options: the plan's, and the defs folder to plan."""
    parser = plan_parser("python -m wsync_dagster plan")
    parser.add_argument(
        "--defs-module",
        default=DEFAULT_DEFS_MODULE,
        metavar="MODULE",
        help=f"the defs folder whose registries to plan (default {DEFAULT_DEFS_MODULE})",
    )
    return parser
