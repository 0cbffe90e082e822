"""Commands that look into a submitted DAG: logs, show, forget."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from slurmdag.cli import app
from slurmdag.cli.common import complete_allocation, dag_argument, echo_json, open_backend, open_store
from slurmdag.model.errors import (
    LogNotFoundError,
    Problem,
    SlurmCommandError,
    SlurmdagError,
    SlurmOutputError,
    UsageError,
)
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.state.store import DagRecord, Store

FOLLOW_READ_INTERVAL = 1.0  # seconds between reads of a followed log file
FOLLOW_STATE_INTERVAL = 5.0  # seconds between asking Slurm whether the followed job has ended


def _allocation_argument(required: bool) -> Any:
    return typer.Argument(
        ... if required else None,
        metavar="ALLOCATION" if required else "[ALLOCATION]",
        help="An allocation of the DAG.",
        autocompletion=complete_allocation,
        show_default=False,
    )


def _load(store: Store, dag_id: str) -> tuple[DagRecord, Plan]:
    record = store.load(dag_id)
    plan = store.load_plan(dag_id)
    if plan is None:
        raise UsageError(Problem(f"DAG {dag_id} has no plan in the store", file="slurmdag"))
    return record, plan


def _allocation(plan: Plan, name: str) -> PlannedJob:
    from slurmdag.compiler.spec import did_you_mean

    names = [j.name for j in plan.allocations()]
    if name not in names:
        hint = did_you_mean(name, names) or f"its allocations: {', '.join(names[:20])}"
        raise UsageError(Problem(f"no allocation {name!r} in this DAG", file="slurmdag", hint=hint))
    return plan.job(name)


# --- logs ---


@app.command()
def logs(
    dag_id: str = dag_argument(),
    allocation: str | None = _allocation_argument(required=False),
    task: int | None = typer.Option(None, "--task", metavar="N", min=0, help="Task N of a task group."),
    err: bool = typer.Option(False, "--err", help="Show stderr instead (when it goes to a file of its own)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing what is written until the job ends."),
) -> None:
    """Print an allocation's output; without ALLOCATION, where every allocation's logs are."""
    from slurmdag.runs import logs as logfiles

    store = open_store()
    record, plan = _load(store, dag_id)
    if allocation is None:
        if task is not None or err or follow:
            raise UsageError(Problem("--task, --err and --follow need an ALLOCATION", file="slurmdag"))
        _list_logs(record, plan)
        return
    job = _allocation(plan, allocation)
    if task is not None and not job.array:
        raise UsageError(Problem(f"{allocation} is a single job, not a task group: drop --task", file="slurmdag"))
    if job.array and task is None:
        task = _pick_task(store, record, plan, allocation)
    if task is not None and task not in logfiles.tasks_of(plan, allocation):
        raise UsageError(Problem(f"{allocation} has no task {task}", file="slurmdag"))
    paths = logfiles.allocation_logs(plan, record, allocation, task)
    if paths is None:
        raise LogNotFoundError(f"{allocation} was never submitted: it has no log")
    path = paths.stderr if err else paths.stdout
    if err and paths.shared:
        typer.echo(f"note: {allocation}'s stderr goes into its output file", err=True)
    path = logfiles.resolve_glob(path)
    if path == logfiles.DEV_NULL:
        typer.echo(f"note: {allocation} writes its {'stderr' if err else 'output'} to /dev/null", err=True)
        return
    if follow:
        _follow_file(Path(path), store, record, plan, allocation, task)
        return
    if not os.path.isfile(path):
        raise LogNotFoundError(_missing(path, store, dag_id, allocation, task))
    _copy_out(Path(path))


def _list_logs(record: DagRecord, plan: Plan) -> None:
    from tabulate import tabulate

    from slurmdag.runs import logs as logfiles

    rows = []
    for job in plan.allocations():
        paths = logfiles.allocation_logs(plan, record, job.name)
        if paths is None:
            rows.append([job.name, "(never submitted)", ""])
            continue
        rows.append([job.name, paths.stdout, "(with stdout)" if paths.shared else paths.stderr])
    if record.log_dir:
        typer.echo(f"log folder of DAG {record.dag_id}: {record.log_dir}")
    typer.echo(tabulate(rows, headers=["ALLOCATION", "STDOUT", "STDERR"], tablefmt="simple", disable_numparse=True))


def _pick_task(store: Store, record: DagRecord, plan: Plan, name: str) -> int:
    """A task group without --task: its first failed task (asking Slurm), or its only task."""
    from slurmdag.model.states import FAILURES
    from slurmdag.runs import logs as logfiles
    from slurmdag.runs.status import collect

    tasks = logfiles.tasks_of(plan, name)
    if len(tasks) == 1:
        return tasks[0]
    failed: list[int] = []
    try:
        status = collect(store, open_backend(), record.dag_id)
    except (SlurmCommandError, SlurmOutputError):
        status = None
    if status is not None:
        node = next(n for n in status.nodes if n.name == name)
        failed = [t.index for t in node.tasks or [] if t.state in FAILURES]
    if failed:
        typer.echo(
            f"note: task {failed[0]} of {name}, its first failed task (failed: {_few(failed)}; --task N picks one)",
            err=True,
        )
        return failed[0]
    raise UsageError(
        Problem(
            f"{name} is a task group of {len(tasks)} tasks: pick one with --task N",
            file="slurmdag",
            hint=f"its tasks: {_few(tasks)}" + ("" if status is not None else " (Slurm could not be read)"),
        )
    )


def _few(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (f" ... ({len(numbers)} in all)" if len(numbers) > 10 else "")


def _missing(path: str, store: Store, dag_id: str, name: str, task: int | None) -> str:
    """Why a log file is not there, from the allocation's state when Slurm can tell."""
    from slurmdag.runs.status import collect

    what = name if task is None else f"task {task} of {name}"
    try:
        status = collect(store, open_backend(), dag_id)
    except (SlurmCommandError, SlurmOutputError):
        return f"no log file of {what} at {path}"
    node = next(n for n in status.nodes if n.name == name)
    state = node.state
    if task is not None:
        state = next((t.state for t in node.tasks or [] if t.index == task), state)
    if not node.ran and state.value in ("Pending", "Skipped", "Cancelled"):
        return f"{what} has not run ({state}): no log at {path}"
    return f"no log file of {what} at {path} (it is {state}; was the file removed, or not writable by the job?)"


def _copy_out(path: Path, start: int = 0) -> int:
    """Write the file's bytes from `start` to stdout as they are; returns the new offset."""
    with path.open("rb") as fh:
        fh.seek(start)
        while chunk := fh.read(1 << 16):
            sys.stdout.buffer.write(chunk)
            start += len(chunk)
    sys.stdout.buffer.flush()
    return start


def _follow_file(path: Path, store: Store, record: DagRecord, plan: Plan, name: str, task: int | None) -> None:
    """Print the file and then what is appended, until the job has ended and everything is printed."""
    from slurmdag.runs import logs as logfiles

    ref = logfiles.job_ref(plan.job(name), record, record.dag_id, task)
    if ref is None:
        raise LogNotFoundError(f"{name} was never submitted: it has no log")
    backend = open_backend()
    offset = 0
    next_check = 0.0
    ended = False
    while True:
        if path.is_file():
            offset = _copy_out(path, offset)
        if ended:
            return
        now = time.monotonic()
        if now >= next_check:
            next_check = now + FOLLOW_STATE_INTERVAL
            ended = _job_ended(backend, ref, task, record)
            if ended:
                continue  # one last read after the end
        time.sleep(FOLLOW_READ_INTERVAL)


def _job_ended(backend, ref, task: int | None, record: DagRecord) -> bool:
    from slurmdag.model.states import slurm_finished

    try:
        rows = backend.query([ref.array_job_id], since=record.created_at())
    except (SlurmCommandError, SlurmOutputError):
        return False  # unknown: keep following
    if task is None:
        row = rows.get(ref.array_job_id)
    else:
        row = rows.get(f"{ref.array_job_id}_{task}")
    return row is not None and slurm_finished(row.state)


# --- show ---


@app.command()
def show(
    dag_id: str = dag_argument(),
    allocation: str = _allocation_argument(required=True),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """An allocation as submitted: its sbatch options and where each came from, job ids, log paths, script."""
    from slurmdag.views.inspect_views import allocation_details, details_text

    store = open_store()
    record, plan = _load(store, dag_id)
    job = _allocation(plan, allocation)
    script = store.script_path(dag_id, job.name)
    if not script.exists():  # a packed allocation's script is its array job's (unless a resume re-ran it alone)
        script = store.script_path(dag_id, plan.slurm_job_of(job.name))
    details = allocation_details(record, plan, job, str(script))
    if as_json:
        echo_json(details)
    else:
        typer.echo(details_text(details), nl=False)


# --- outputs ---


@app.command()
def outputs(
    dag_id: str = dag_argument(),
    allocation: str | None = _allocation_argument(required=False),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """What the DAG's allocations published (`outputs:` / slurmdag-output), read from its run folder."""
    from slurmdag.runs.outputs import read_outputs, run_dir_of
    from slurmdag.views.outputs_views import outputs_json, outputs_text

    store = open_store()
    record, plan = _load(store, dag_id)
    if allocation is not None:
        _allocation(plan, allocation)
    run_dir = run_dir_of(store, record)
    found = read_outputs(run_dir, plan, allocation)
    if as_json:
        echo_json(outputs_json(dag_id, str(run_dir), found))
    else:
        typer.echo(outputs_text(found, every=allocation is not None), nl=False)


# --- forget ---


@app.command()
def forget(
    dag_id: str = dag_argument(),
    force: bool = typer.Option(
        False, "--force", help="Forget it even when Slurm cannot be asked whether it finished (nothing is cancelled)."
    ),
) -> None:
    """Remove a finished DAG from your store (its record, scripts and the logs kept there); refuses an active one."""
    from slurmdag.runs.status import collect
    from slurmdag.state.store import SUBMITTING

    store = open_store()
    record = store.load(dag_id)
    if record.submission == SUBMITTING:
        raise UsageError(
            Problem(f"DAG {dag_id} is being submitted", file="slurmdag", hint="wait for the submit to end, then retry")
        )
    state = record.final_state
    if state is None:
        try:
            status = collect(store, open_backend(), dag_id)
        except (SlurmCommandError, SlurmOutputError) as ex:
            if not force:
                raise SlurmdagError(
                    f"cannot tell whether DAG {dag_id} has finished: {ex}\n"
                    "use --force to forget it anyway (its jobs, if any, are left alone)"
                ) from None
        else:
            if not status.terminal:
                raise UsageError(
                    Problem(
                        f"DAG {dag_id} is {status.state}: only a finished DAG can be forgotten",
                        file="slurmdag",
                        hint=f"cancel it first (`slurmdag cancel {dag_id}`) or wait until it ends",
                    )
                )
            state = status.state.value
    if not store.remove(dag_id):
        raise SlurmdagError(f"DAG {dag_id} is in use by another slurmdag command; try again")
    typer.echo(f"forgot DAG {dag_id} ({record.name}, {state or 'state unknown'})")
    if record.log_dir and not record.log_dir.startswith(str(store.dag_dir(dag_id))):
        typer.echo(f"its logs in {record.log_dir} are kept")
