"""`slurmdag policy show`, and the policy + pre-flight step that `validate` and `submit` run before anything else."""

from __future__ import annotations

import sys

import typer
from tabulate import tabulate

from slurmdag.cli import app
from slurmdag.model.errors import InputError, Problem, SlurmCommandError
from slurmdag.model.plan import Plan

# compile's own allocation cap is lifted where the policy check follows, so a site may raise it and a refusal
# names the limit and who set it.
NO_COMPILE_CAP = sys.maxsize

policy_app = typer.Typer(help="Site limits on what one DAG may do.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _warn(problems: list[Problem]) -> None:
    for p in problems:
        typer.echo(f"{p.location()}: warning: {p.message}" + (f"\n  hint: {p.hint}" if p.hint else ""), err=True)


def load_policy(plan: Plan | None = None):
    from slurmdag.policy.limits import read_policy, workflow_source
    from slurmdag.policy.site_paths import site_policy_path, user_config_path

    policy = read_policy(site_policy_path(), user_config_path(), workflow_source(plan) if plan else None)
    _warn(policy.warnings)
    return policy


def check_policy(plan: Plan, default_partition: str | None = None):
    """The effective policy for `plan`; raises InputError (exit 2) naming every limit the plan exceeds."""
    from slurmdag.policy.limits import check_plan

    policy = load_policy(plan)
    problems = check_plan(plan, policy, default_partition)
    if problems:
        raise InputError(problems)
    return policy


def admit(plan: Plan, dry_run: bool = False):
    """Policy, then pre-flight against the live cluster: the plan to submit (arrays split, concurrency lanes) and
    the verdict. Refusals raise InputError/PreflightError before anything is submitted. A dry run that cannot
    reach Slurm still shows the plan (verdict None)."""
    from slurmdag.cli.common import open_backend
    from slurmdag.compiler.lanes import apply_max_concurrent
    from slurmdag.policy import preflight

    try:
        cluster = open_backend().read_cluster()
    except SlurmCommandError as ex:
        if not dry_run:
            raise
        check_policy(plan)
        typer.echo(f"pre-flight: not done, Slurm could not be read: {ex}", err=True)
        return plan, None
    policy = check_policy(plan, cluster.default_partition())
    verdict = preflight.check(plan, cluster)
    k = policy.value("max_concurrent")
    if k is not None and verdict.ok:
        verdict.plan = apply_max_concurrent(verdict.plan, k)
        verdict.notes.append(
            f"max_concurrent = {k} (set by {policy['max_concurrent'].source}): at most {k} of the "
            f"DAG's jobs run at once (dependency lanes and %{k} array throttles)"
        )
    return verdict.plan, verdict


@policy_app.command("show")
def show(
    workflow: str = typer.Argument(None, metavar="[WORKFLOW.yaml]", help="Also apply this workflow's own limits."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print the effective limits and where each came from (site file, your config, the workflow)."""
    import json

    from slurmdag.compiler.compile import compile_file
    from slurmdag.policy.limits import LIMITS, env_note
    from slurmdag.policy.site_paths import site_policy_path, user_config_path

    plan = compile_file(workflow, max_allocations=NO_COMPILE_CAP) if workflow else None
    policy = load_policy(plan)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "site_file": str(site_policy_path()),
                    "user_config": str(user_config_path()),
                    "limits": {
                        n: {"value": _jsonable(lim.value), "source": lim.source} for n, lim in policy.limits.items()
                    },
                },
                indent=2,
            )
        )
        return
    rows = [[n, LIMITS[n].show(lim.value), lim.source, LIMITS[n].doc] for n, lim in policy.limits.items()]
    typer.echo(f"site policy file: {site_policy_path()}" + ("" if site_policy_path().exists() else " (absent)"))
    typer.echo(f"your config:      {user_config_path()}" + ("" if user_config_path().exists() else " (absent)"))
    typer.echo(tabulate(rows, headers=["LIMIT", "VALUE", "SET BY", "WHAT"], tablefmt="simple", disable_numparse=True))
    note = env_note()
    if note:
        typer.echo(f"note: {note}")


def _jsonable(value):
    if isinstance(value, frozenset):
        return sorted(value)
    return value
