"""Commands that run part of a DAG again: resume, redo (slurmdag/runs/recovery.py does the work)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from slurmdag.cli import app
from slurmdag.cli.common import complete_allocation, dag_argument, open_backend, open_store


def _describe(outcome) -> str:
    sub = outcome.sub_plan
    verb = "Would submit" if outcome.dry_run else "Submitted"
    allocations = [j for j in sub.jobs if j.kind == "allocation"]
    lines = [
        f"{verb} attempt {outcome.attempt} of DAG {outcome.dag_id} ({outcome.kind}): "
        f"{len(allocations)} allocation(s) run again"
    ]
    for job in sub.jobs:
        if job.kind != "allocation":
            continue
        subset = f" tasks {sub.subsets[job.name]}" if job.name in sub.subsets else ""
        job_id = outcome.job_ids.get(job.name)
        lines.append(f"  {job.name}{subset}" + (f"  #{job_id}" if job_id else ""))
    kept = [n for n in sub.kept if "+" not in n]
    if kept:
        lines.append(f"kept from earlier attempts (not run again): {', '.join(kept)}")
    for name, why in sub.decided.items():
        lines.append(f"not submitted: {name}: its dependency {why}")
    return "\n".join(lines)


def _json(outcome) -> dict:
    sub = outcome.sub_plan
    return {
        "dag_id": outcome.dag_id,
        "attempt": outcome.attempt,
        "kind": outcome.kind,
        "dry_run": outcome.dry_run,
        "jobs": outcome.job_ids if not outcome.dry_run else {j.name: None for j in sub.jobs},
        "subsets": sub.subsets,
        "kept": sub.kept,
        "decided": sub.decided,
        "dropped_edges": [list(e) for e in sub.dropped],
    }


def _run(
    dag_id: str, allocation: str | None, cascade: bool, from_file: Path | None, dry_run: bool, as_json: bool
) -> None:
    from slurmdag.runs.recovery import recover
    from slurmdag.runs.submit import hangup_finishes

    with hangup_finishes():  # an SSH disconnect does not stop a new attempt half-way: it is finished
        outcome = recover(
            open_store(),
            open_backend(),
            dag_id,
            allocation=allocation,
            cascade=cascade,
            from_file=from_file,
            dry_run=dry_run,
        )
    if as_json:
        typer.echo(json.dumps(_json(outcome), indent=2))
    else:
        typer.echo(_describe(outcome))


@app.command()
def resume(
    dag_id: str = dag_argument(),
    from_file: Path = typer.Option(
        None,
        "--from",
        metavar="WORKFLOW.yaml",
        help="Re-read this workflow instead of the submitted plan; refused if it changes an allocation that completed.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run again; submit nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run again every allocation (task) that did not complete; keep what did. Same DAG id, a new attempt."""
    _run(dag_id, None, False, from_file, dry_run, as_json)


@app.command()
def redo(
    dag_id: str = dag_argument(),
    allocation: str = typer.Argument(
        ...,
        metavar="ALLOCATION",
        help="The allocation to run again (even if it completed).",
        autocompletion=complete_allocation,
    ),
    cascade: bool = typer.Option(False, "--cascade", help="Also run again everything downstream of it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run again; submit nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run one allocation again, even if it completed; with --cascade also everything downstream of it."""
    _run(dag_id, allocation, cascade, None, dry_run, as_json)
