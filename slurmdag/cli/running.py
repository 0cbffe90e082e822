"""Commands that talk to Slurm: submit, status, list, cancel."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import typer

from slurmdag.cli import app
from slurmdag.cli.common import (
    DAG_HELP,
    complete_allocation,
    dag_argument,
    echo_json,
    echo_warnings,
    failed_logs_of,
    follow,
    open_backend,
    open_store,
    outputs_of,
    start_backend,
)
from slurmdag.model.errors import InputError, StoreError
from slurmdag.model.plan import Plan


class SubmitProgress:
    """`submitted 350/500` on stderr once a submission takes longer than a moment: rewritten in place on a
    terminal, a line every few seconds otherwise."""

    QUIET_FOR = 1.0  # seconds before the first report
    PLAIN_EVERY = 5.0  # seconds between reports when stderr is not a terminal

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.start < self.QUIET_FOR:
            return
        with self.lock:
            if self.tty:
                sys.stderr.write(f"\rsubmitted {done}/{total}")
                sys.stderr.flush()
                self.shown = True
            elif now - self.last >= self.PLAIN_EVERY or (done == total and self.shown):
                self.last = now
                self.shown = True
                typer.echo(f"submitted {done}/{total}", err=True)

    def __enter__(self) -> SubmitProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


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
    from slurmdag.policy.admission import allocation_cap  # refused while reading; admit checks the other limits

    cap = allocation_cap()
    try:
        return compile_file(
            path,
            overrides=parse_overrides(sets),
            max_allocations=cap.value,
            limit_note=cap.note,
            auto_array=cap.auto_array,
        )
    except InputError:
        echo_warnings(cap.warnings)  # admit, which would show them, is not reached
        raise


@app.command()
def submit(
    workflow: Path = typer.Argument(
        ..., metavar="WORKFLOW.yaml", help="The workflow file (or a compiled plan.json, or its directory)."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="NAME=VALUE",
        help="Override a workflow param: --set NAME=VALUE (repeatable; VALUE is read as a YAML scalar).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be submitted; touch nothing."),
    as_json: bool = typer.Option(False, "--json", help='Print {"dag_id": ..., "jobs": {name: job_id}}.'),
    watch: bool = typer.Option(False, "--watch", help="Follow the DAG until it ends; exit 0 only if Completed."),
    log_dir: Path | None = typer.Option(
        None,
        "--log-dir",
        metavar="DIR",
        help="Write the jobs' output under DIR/<dag id>/ (default: $SLURMDAG_LOG_DIR, else the DAG's store folder).",
    ),
    cascade: str = typer.Option(
        "native",
        "--cascade",
        metavar="native|reconciler",
        help="Who cancels jobs that can never run: Slurm (--kill-on-invalid-dep=yes) or `slurmdag reconcile`.",
    ),
) -> None:
    """Submit a whole workflow at once, all or nothing."""
    from slurmdag.backends.cli import start_client_reads

    # Before the compiler is imported: the pyslurm probe (a child process) and pre-flight's sacctmgr and sbatch
    # --help run while this process imports the compiler and compiles the workflow.
    start_backend()
    start_client_reads()
    from slurmdag.runs import submit as submitting
    from slurmdag.views.status_views import submit_dry_run

    # An SSH disconnect (SIGHUP) anywhere in here does not stop the submission: it is finished, never half-done.
    with submitting.hangup_finishes() as hung_up:
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
                        else {
                            "ok": verdict.ok,
                            "notes": verdict.notes,
                            "problems": [str(p) for p in verdict.problems],
                            "wait_for_room": verdict.wait_for_room,
                            "no_room": verdict.no_room,
                        },
                    }
                )
            else:
                typer.echo(submit_dry_run(plan, planned))
                if verdict is not None:
                    typer.echo("\n".join(verdict.lines()))
            admitted.raise_if_refused()
            return
        admitted.raise_if_refused()
        if admitted.verdict is not None and admitted.verdict.wait_for_room:
            from slurmdag.policy.admission import wait_for_room
            from slurmdag.policy.preflight import JOB_TABLE_WAIT

            typer.echo(
                f"Slurm's job table has no room for this DAG yet: waiting about {admitted.verdict.wait_for_room:.0f} s"
                f" for finished jobs to leave it (at most {JOB_TABLE_WAIT:.0f} s; nothing is submitted meanwhile)",
                err=True,
            )
            wait_for_room(admitted, backend)
        store = open_store()
        with SubmitProgress() as progress:
            record = submitting.submit_plan(
                plan,
                store,
                backend,
                workflow=str(workflow.resolve()),
                cascade=cascade,
                log_dir=str(log_dir) if log_dir is not None else None,
                on_progress=progress,
            )
        if as_json:
            echo_json({"dag_id": record.dag_id, "jobs": record.job_ids})
        else:
            typer.echo(f"Submitted DAG {record.dag_id} with {len(plan.allocations())} allocations")
    if watch and not hung_up[0]:  # nobody is left to watch
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
    from slurmdag.views.status_views import failed_log_lines, status_json, status_table, status_tree

    store, backend = open_store(), open_backend()
    dag_id = dag_id or resolve(store, "@")
    if watch:
        follow(store, backend, dag_id, as_json=as_json, graph=graph, tasks=tasks)
        return
    st = collect(store, backend, dag_id)
    if as_json:
        echo_json(status_json(st, failed_logs_of(store, st, every_task=True), outputs_of(store, st)))
        for note in st.notes:
            typer.echo(f"note: {note}", err=True)
    elif graph:
        typer.echo(status_tree(st))
        for line in failed_log_lines(st, failed_logs_of(store, st)):
            typer.echo(line)
        for note in st.notes:
            typer.echo(f"note: {note}")
    else:
        typer.echo(status_table(st, tasks=tasks, failed=failed_logs_of(store, st)))


@app.command("list")
def list_(
    show_all: bool = typer.Option(False, "--all", help="Every DAG in the store, not only active and recent ones."),
    states: list[str] = typer.Option(
        [], "--state", metavar="STATE", help="Only DAGs in this state (repeatable or comma-separated: Failed,Running)."
    ),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Only workflows whose name matches (a glob, or a part of the name)."
    ),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN", help='Only DAGs created since: "2h", "3d" ago, or a UTC date "2026-11-01".'
    ),
    limit: int | None = typer.Option(None, "-n", "--limit", metavar="N", min=1, help="At most N DAGs (newest)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Your DAGs, newest first: every active one and the 10 newest finished (--all, or any filter: every one)."""
    from slurmdag.runs.dag_filters import RecordFilter, parse_since, parse_states
    from slurmdag.runs.status import list_dags
    from slurmdag.views.status_views import list_json, list_table

    wanted = parse_states(states)
    keep = RecordFilter(name=name, since=parse_since(since) if since else None)
    everything = show_all or wanted is not None or keep.active or limit is not None
    listing = list_dags(open_store(), open_backend(), show_all=everything, keep=keep if keep.active else None)
    listed = listing.dags
    if wanted is not None:
        listed = [d for d in listed if d.state in wanted]
    if limit is not None:
        listed = listed[:limit]
    rows = [(d.record, d.state, d.counts) for d in listed]
    notes = [n for d in listed for n in d.notes]
    if as_json:
        echo_json(list_json(rows))
        for note in notes:
            typer.echo(f"note: {note}", err=True)
    else:
        filtered = wanted is not None or keep.active
        if rows or not listing.unreadable:
            typer.echo(list_table(rows) if rows else ("no DAG matches" if filtered else "no DAGs yet"))
        for note in notes:
            typer.echo(f"note: {note}")
    if listing.unreadable:
        # Every good DAG was listed; the damaged records are named and the exit status says something is wrong.
        raise StoreError("\n".join(str(e) for e in listing.unreadable))


@app.command()
def cancel(
    dag_id: str = dag_argument(),
    dry_run: bool = typer.Option(False, "--dry-run", help="List exactly what would be cancelled."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    allocations: list[str] = typer.Option(
        [],
        "--allocation",
        metavar="NAME",
        help="Cancel only this allocation (repeatable); what needs it to "
        "succeed is cancelled, its failure handlers do not start.",
        autocompletion=complete_allocation,
    ),
    # The name this option had first (`--node`): old commands and scripts keep working; not shown in --help.
    old_node_option: list[str] = typer.Option([], "--node", hidden=True, autocompletion=complete_allocation),
) -> None:
    """Cancel every unfinished job of a DAG; failure/any handlers do not start."""
    from slurmdag.runs.cancel import cancel_dag
    from slurmdag.views.status_views import cancel_listing

    names = [*allocations, *old_node_option]
    if names:
        if dry_run:
            raise InputError("--dry-run lists a whole-DAG cancel; it does not combine with --allocation")
        from slurmdag.runs.cancel_allocations import cancel_allocations

        done = cancel_allocations(open_store(), open_backend(), dag_id, names)
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
