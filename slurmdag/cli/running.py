"""Commands that talk to Slurm: submit, status, list, cancel."""

from __future__ import annotations

from pathlib import Path

import typer

from slurmdag.cli import app
from slurmdag.cli.common import DAG_HELP, dag_argument, echo_json, follow, open_backend, open_store
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Plan


def _load_plan(path: Path, sets: list[str]) -> Plan:
    """A workflow file (compiled here), or a plan.json / a directory holding one (from `slurmdag compile`)."""
    plan_file = path / "plan.json" if path.is_dir() else path
    if plan_file.suffix == ".json":
        if sets:
            raise InputError("--set applies to workflow files, not to an already compiled plan.json")
        try:
            return Plan.from_json(plan_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{plan_file}: no such file") from None
        except (ValueError, KeyError, TypeError) as ex:
            raise InputError(f"{plan_file}: not a slurmdag plan: {ex}") from None
    from slurmdag.compiler.compile import compile_file, parse_overrides
    from slurmdag.policy.admission import NO_COMPILE_CAP  # the site policy checks the size (submit: admit)

    return compile_file(path, overrides=parse_overrides(sets), max_allocations=NO_COMPILE_CAP)


@app.command()
def submit(
    workflow: Path = typer.Argument(..., help="Workflow YAML (or a compiled plan.json / its directory)."),
    set_: list[str] = typer.Option([], "--set", help="Override a param: --set key=value (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be submitted; touch nothing."),
    as_json: bool = typer.Option(False, "--json", help='Print {"dag_id": ..., "jobs": {name: job_id}}.'),
    watch: bool = typer.Option(False, "--watch", help="Follow the DAG until it ends; exit 0 only if Completed."),
    cascade: str = typer.Option(
        "native",
        "--cascade",
        metavar="native|reconciler",
        help="Who cancels jobs that can never run: Slurm (--kill-on-invalid-dep=yes) or `slurmdag reconcile`.",
    ),
) -> None:
    """Submit a whole workflow at once, all or nothing."""
    from slurmdag.runs import submit as submitting
    from slurmdag.views.status_views import submit_dry_run

    if cascade not in submitting.CASCADES:
        raise InputError(f"--cascade must be one of: {', '.join(submitting.CASCADES)} (got {cascade!r})")
    plan = _load_plan(workflow, set_)
    from slurmdag.cli.policy import admit

    backend = open_backend()
    admitted = admit(plan, backend, dry_run=dry_run)  # site policy + pre-flight against the live cluster + lanes
    plan, verdict = admitted.plan, admitted.verdict
    if dry_run:
        planned = submitting.describe(plan, cascade)
        if as_json:
            echo_json(
                {
                    "workflow": plan.workflow,
                    "jobs": [
                        {"name": p.name, "kind": p.kind, "dependency": p.dependency, "sbatch": p.options}
                        for p in planned
                    ],
                    "preflight": None
                    if verdict is None
                    else {"ok": verdict.ok, "notes": verdict.notes, "problems": [str(p) for p in verdict.problems]},
                }
            )
        else:
            typer.echo(submit_dry_run(plan, planned))
            if verdict is not None:
                typer.echo("\n".join(verdict.lines()))
        admitted.raise_if_refused()
        return
    admitted.raise_if_refused()
    store = open_store()
    record = submitting.submit_plan(plan, store, backend, workflow=str(workflow.resolve()), cascade=cascade)
    if as_json:
        echo_json({"dag_id": record.dag_id, "jobs": record.job_ids})
    else:
        typer.echo(f"Submitted DAG {record.dag_id} with {len(plan.allocations())} allocations")
    if watch:
        follow(store, backend, record.dag_id, as_json=as_json)


@app.command()
def status(
    dag_id: str | None = dag_argument(None, help=f"{DAG_HELP} Default: @."),
    graph: bool = typer.Option(False, "--graph", help="Show the DAG as a tree with states."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: bool = typer.Option(False, "--watch", help="Follow until the DAG ends; exit 0 only if Completed."),
    tasks: bool = typer.Option(False, "--tasks", help="One row per task of each task group."),
) -> None:
    """Show the state of a DAG, your newest by default (one squeue and one sacct call, whatever its size)."""
    from slurmdag.runs.status import collect
    from slurmdag.state.dag_refs import resolve
    from slurmdag.views.status_views import status_json, status_table, status_tree

    store, backend = open_store(), open_backend()
    dag_id = dag_id or resolve(store, "@")
    if watch:
        follow(store, backend, dag_id, as_json=as_json, graph=graph, tasks=tasks)
        return
    st = collect(store, backend, dag_id)
    if as_json:
        echo_json(status_json(st))
        for note in st.notes:
            typer.echo(f"note: {note}", err=True)
    elif graph:
        typer.echo(status_tree(st))
        for note in st.notes:
            typer.echo(f"note: {note}")
    else:
        typer.echo(status_table(st, tasks=tasks))


@app.command("list")
def list_(
    show_all: bool = typer.Option(False, "--all", help="Every DAG in the store, not only active and recent ones."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Your DAGs, newest first: every active one and the 10 newest finished (--all: every one)."""
    from slurmdag.runs.status import list_dags
    from slurmdag.views.status_views import list_json, list_table

    listed = list_dags(open_store(), open_backend(), show_all=show_all)
    rows = [(d.record, d.state, d.counts) for d in listed]
    notes = [n for d in listed for n in d.notes]
    if as_json:
        echo_json(list_json(rows))
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        return
    typer.echo(list_table(rows) if rows else "no DAGs yet")
    for note in notes:
        typer.echo(f"note: {note}")


@app.command()
def cancel(
    dag_id: str = dag_argument(),
    dry_run: bool = typer.Option(False, "--dry-run", help="List exactly what would be cancelled."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    nodes: list[str] = typer.Option(
        [],
        "--node",
        help="Cancel only this allocation (repeatable); what needs it to "
        "succeed is cancelled, its failure handlers do not start.",
    ),
) -> None:
    """Cancel every unfinished job of a DAG; failure/any handlers do not start."""
    from slurmdag.runs.cancel import cancel_dag
    from slurmdag.views.status_views import cancel_listing

    if nodes:
        if dry_run:
            raise InputError("--dry-run lists a whole-DAG cancel; it does not combine with --node")
        from slurmdag.runs.cancel_allocations import cancel_allocations

        done = cancel_allocations(open_store(), open_backend(), dag_id, nodes)
        if as_json:
            echo_json({"dag_id": dag_id, "cancelled": done.cancelled, "handlers_cancelled": done.handlers})
        else:
            for note in done.notes:
                typer.echo(f"note: {note}")
            typer.echo(
                f"DAG {dag_id}: cancelled {', '.join(done.cancelled) or 'nothing'}"
                + (f"; failure handlers not started: {', '.join(done.handlers)}" if done.handlers else "")
            )
        return

    outcome = cancel_dag(open_store(), open_backend(), dag_id, dry_run=dry_run)
    if as_json:
        echo_json(
            {
                "dag_id": outcome.dag_id,
                "dry_run": outcome.dry_run,
                "state": outcome.status.state.value if outcome.status else None,
                "jobs": [{"name": t.name, "job_id": t.job_id, "state": t.state.value} for t in outcome.targets],
            }
        )
        for note in outcome.notes:
            typer.echo(f"note: {note}", err=True)
        return
    for note in outcome.notes:
        typer.echo(f"note: {note}")
    typer.echo(cancel_listing(outcome))
