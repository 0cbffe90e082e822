"""`slurmdag policy show`; and showing what admission (slurmdag/policy/admission.py) says, for validate and submit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from slurmdag.cli import app
from slurmdag.cli.common import echo_warnings
from slurmdag.model.plan import Plan

if TYPE_CHECKING:  # imported when used: every command module is imported at start-up
    from slurmdag.backends.base import Backend
    from slurmdag.policy.admission import Admission, PolicyCheck

policy_app = typer.Typer(help="Site limits on what one DAG may do.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def check_policy(plan: Plan) -> PolicyCheck:
    """The site policy's verdict on `plan`, its warnings shown; InputError (exit 2) naming every limit exceeded."""
    from slurmdag.policy import admission

    checked = admission.check_policy(plan)
    echo_warnings(checked.warnings)
    checked.raise_if_refused()
    return checked


def admit(plan: Plan, backend: Backend, dry_run: bool = False) -> Admission:
    """Admission (policy, pre-flight, lanes) with its warnings and notes shown; a policy refusal raises here, a
    pre-flight refusal is left to the caller (a dry run shows the verdict first)."""
    from slurmdag.policy import admission

    admitted = admission.admit(plan, backend, dry_run=dry_run)
    echo_warnings(admitted.warnings)
    for note in admitted.notes:
        typer.echo(note, err=True)
    admitted.policy.raise_if_refused()
    return admitted


@policy_app.command("show")
def show(
    workflow: str = typer.Argument(None, metavar="[WORKFLOW.yaml]", help="Also apply this workflow's own limits."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print the effective limits and where each came from (site file, your config, the workflow)."""
    import json

    from slurmdag.compiler.compile import compile_file
    from slurmdag.policy import admission
    from slurmdag.policy.limits import LIMITS, env_note
    from slurmdag.policy.site_paths import site_policy_path, user_config_path

    plan = compile_file(workflow, max_allocations=admission.NO_COMPILE_CAP) if workflow else None
    policy = admission.effective_policy(plan)
    echo_warnings(policy.warnings)
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
    from tabulate import tabulate  # only this command draws a table

    typer.echo(tabulate(rows, headers=["LIMIT", "VALUE", "SET BY", "WHAT"], tablefmt="simple", disable_numparse=True))
    note = env_note()
    if note:
        typer.echo(f"note: {note}")


def _jsonable(value):
    if isinstance(value, frozenset):
        return sorted(value)
    return value
