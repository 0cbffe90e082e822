"""Commands that follow DAGs after submit: watch (live view + reconciler) and reconcile (cron/scrontab safe)."""

from __future__ import annotations

import json
import time

import typer

from slurmdag.cli import app
from slurmdag.cli.common import complete_dag, dag_argument, echo_json, follow, open_backend, open_store, resolve_dag
from slurmdag.model.errors import ReconcileFailedError

RETRY_MAX = 60.0  # seconds between retries while Slurm cannot be read


def _pass_lines(report) -> list[str]:
    lines = []
    for dag_id, cancels in report.cancelled.items():
        names = ", ".join(f"{c.allocation} ({c.job_id})" for c in cancels)
        lines.append(f"DAG {dag_id}: cancelled {len(cancels)} job(s) that can never run: {names}")
    return lines


@app.command()
def watch(
    dag_id: str = dag_argument(),
    as_json: bool = typer.Option(False, "--json", help="Print only the final status as JSON."),
    graph: bool = typer.Option(False, "--graph", help="Show the DAG as a tree with states."),
) -> None:
    """Follow a DAG live and reconcile it until it ends; exit 0 if it Completed, 1 otherwise."""
    from slurmdag.runs import reconcile
    from slurmdag.runs.status import collect

    store, backend = open_store(), open_backend()

    def poll():
        delay = reconcile.FIRST_INTERVAL
        while True:
            report = reconcile.step(store, backend, [dag_id])
            for line in _pass_lines(report):
                typer.echo(line, err=as_json)
            if report.error is None:
                if report.statuses:
                    return report.statuses[0]
                return collect(store, backend, dag_id)  # not in the local store: rebuilt from Slurm, read only
            typer.echo(f"note: {report.error}", err=True)
            time.sleep(delay)
            delay = min(delay * reconcile.BACKOFF, RETRY_MAX)

    follow(store, backend, dag_id, as_json=as_json, graph=graph, poll=poll)


@app.command("reconcile")
def reconcile_(
    dag_ids: list[str] = typer.Argument(
        None,
        metavar="[DAG]...",
        help="DAG ids (or @, @~1, ...); default: every active DAG of yours.",
        callback=resolve_dag,
        autocompletion=complete_dag,
    ),
    once: bool = typer.Option(False, "--once", help="One pass, then exit (for cron or scrontab)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="One pass that lists what it would cancel; changes nothing."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary of each pass."),
) -> None:
    """Do what Slurm cannot: cancel jobs that can never run (--cascade reconciler DAGs, or where Slurm's own kill
    is off). One batched query per pass; backs off while nothing changes; a lock keeps reconcilers from racing."""
    from slurmdag.runs import reconcile

    store, backend = open_store(), open_backend()
    if dry_run:  # acts on nothing, so it needs no lock and may run beside a live reconciler
        _dry_run(reconcile.reconcile_pass(store, backend, dag_ids or (), dry_run=True), as_json)
        return
    lock = store.lock_reconciler()
    if lock is None:
        typer.echo("another slurmdag reconciler is running for this store; leaving it to that one")
        return
    errors: list[str] = []

    def show(report) -> None:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "dags": [{"dag_id": s.dag_id, "state": s.state.value} for s in report.statuses],
                        "cancelled": {
                            d: [{"name": c.allocation, "job_id": c.job_id, "why": c.why} for c in cs]
                            for d, cs in report.cancelled.items()
                        },
                        "error": report.error,
                    }
                )
            )
        else:
            for line in _pass_lines(report):
                typer.echo(line)
            if report.error:
                typer.echo(f"note: {report.error}", err=True)
        if report.error:
            errors.append(report.error)

    with lock:
        if once:
            report = reconcile.reconcile_pass(store, backend, dag_ids or ())
            show(report)
            if not as_json:
                active = [s for s in report.statuses if not s.terminal]
                typer.echo(f"reconciled {len(report.statuses)} DAG(s), {len(active)} still active")
            if report.error:
                raise ReconcileFailedError(report.error)
            return
        reconcile.run(store, backend, dag_ids or (), on_pass=show)


def _dry_run(report, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "dry_run": True,
                "dags": [{"dag_id": s.dag_id, "state": s.state.value} for s in report.statuses],
                "would_cancel": {
                    d: [{"name": c.allocation, "job_id": c.job_id, "why": c.why} for c in cs]
                    for d, cs in report.would_cancel.items()
                },
                "skipped": report.skipped,
                "error": report.error,
            }
        )
    else:
        for dag_id, cancels in report.would_cancel.items():
            typer.echo(f"DAG {dag_id}: would cancel {len(cancels)} job(s) that can never run:")
            for c in cancels:
                typer.echo(f"  {c.allocation} ({c.job_id}): {c.why}")
        for dag_id in report.skipped:
            typer.echo(f"DAG {dag_id}: still being submitted (a real pass checks whether its submitter is alive)")
        total = sum(len(c) for c in report.would_cancel.values())
        typer.echo(f"dry run: looked at {len(report.statuses)} DAG(s); would cancel {total} job(s); nothing changed")
    if report.error:
        raise ReconcileFailedError(report.error)
