"""What several commands share: the store and backend they act on, JSON output, and the one follow loop."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from slurmdag.model.errors import DagNotCompletedError, Problem

if TYPE_CHECKING:
    from slurmdag.backends.base import Backend
    from slurmdag.runs.logs import FailedLog
    from slurmdag.runs.outputs import AllocationOutputs
    from slurmdag.runs.status import DagStatus
    from slurmdag.state.store import Store

# --watch polling: one batched query per poll, starting fast and backing off so a long DAG costs little.
WATCH_FIRST_INTERVAL = 2.0
WATCH_MAX_INTERVAL = 30.0


@dataclass
class Settings:
    """The global options (`slurmdag --backend X -v CMD`), set by the root callback before any command runs."""

    backend: str | None = None
    verbose: bool = False
    chosen: Backend | None = None  # one backend per process: the pyslurm probe runs once
    choosing: Any = None  # a choice under way in a thread (start_backend), taken by open_backend


SETTINGS = Settings()


def requested_backend() -> tuple[str, str]:
    """(backend asked for, where that came from): --backend, else $SLURMDAG_BACKEND, else the site config, else
    auto."""
    from slurmdag.backends import choice

    if SETTINGS.backend:
        return SETTINGS.backend, "--backend"
    if os.environ.get(choice.ENV_VAR):
        return os.environ[choice.ENV_VAR], f"${choice.ENV_VAR}"
    from slurmdag.policy.limits import read_site_backend
    from slurmdag.policy.site_paths import site_policy_path

    path = site_policy_path()
    site = read_site_backend(path)
    if site is not None:
        return site, f"site config {path}"
    return choice.DEFAULT, "default"


def start_backend() -> None:
    """Start choosing the backend in a thread: the pyslurm probe is a child process (a Python start-up and the
    import, ~0.3 s) that can run while the command compiles its workflow; open_backend() takes the result. A daemon
    thread: a command that stops early (bad input) does not wait for it."""
    if SETTINGS.chosen is not None or SETTINGS.choosing is not None:
        return
    import threading

    from slurmdag.backends import choice

    requested, source = requested_backend()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["choice"] = choice.choose(requested, source)
        except BaseException as ex:  # noqa: BLE001 - raised again in the thread that opens the backend
            outcome["error"] = ex

    thread = threading.Thread(target=run, name="slurmdag-backend-choice", daemon=True)
    thread.start()
    SETTINGS.choosing = (thread, outcome)


def open_backend() -> Backend:
    if SETTINGS.chosen is None:
        from slurmdag.backends import choice

        if SETTINGS.choosing is not None:
            (thread, outcome), SETTINGS.choosing = SETTINGS.choosing, None
            thread.join()
            if "error" in outcome:
                raise outcome["error"]
            chosen = outcome["choice"]
        else:
            requested, source = requested_backend()
            chosen = choice.choose(requested, source)
        if SETTINGS.verbose:
            typer.echo(f"slurmdag: {chosen.reason}", err=True)
        SETTINGS.chosen = chosen.backend
    return SETTINGS.chosen


def open_store() -> Store:
    from slurmdag.state.store import Store

    return Store()


DAG_HELP = "DAG id (8 hex characters); @ is your newest DAG, @~1 the one before."


def resolve_dag(ctx: typer.Context | None, param: Any, value: Any) -> Any:
    """Argument callback: `@`, `@~N` (and, for a list, each item) replaced by the DAG id they name."""
    from slurmdag.state.dag_refs import resolve

    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [resolve(open_store(), v) for v in value]
    return resolve(open_store(), value)


def complete_dag(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion: your DAG ids, newest first, each with its name and state."""
    try:
        records = open_store().list_records()
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    return [
        (r.dag_id, f"{r.name} {r.final_state or r.submission} {r.created}")
        for r in records
        if r.dag_id.startswith(incomplete)
    ]


def complete_allocation(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the allocation names of the DAG given earlier on the command line."""
    dag_id = ctx.params.get("dag_id")
    if not isinstance(dag_id, str):
        return []
    try:
        plan = open_store().load_plan(dag_id)
    except Exception:  # an unknown or malformed id: nothing to offer
        return []
    if plan is None:
        return []
    return [j.name for j in plan.allocations() if j.name.startswith(incomplete)]


def dag_argument(default: Any = ..., help: str = DAG_HELP) -> Any:
    """The DAG argument of every command that takes one: resolves `@` refs, completes ids."""
    return typer.Argument(
        default, metavar="DAG", help=help, callback=resolve_dag, autocompletion=complete_dag, show_default=False
    )


def failed_logs_of(store: Store, status: DagStatus, every_task: bool = False) -> list[FailedLog]:
    """Where the failed allocations of a DAG wrote their output (none for a DAG not in the local store)."""
    from slurmdag.runs.logs import failed_logs

    if not store.exists(status.dag_id):
        return []
    return failed_logs(status, store.load(status.dag_id), every_task)


def outputs_of(store: Store, status: DagStatus) -> list[AllocationOutputs]:
    """What the DAG's allocations published (none for a DAG not in the local store): read from its run folder."""
    from slurmdag.runs.outputs import read_outputs, run_dir_of

    if not store.exists(status.dag_id):
        return []
    return read_outputs(run_dir_of(store, store.load(status.dag_id)), status.plan)


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def format_warning(p: Problem) -> str:
    text = f"{p.location()}: warning: {p.message}"
    return text + (f"\n  hint: {p.hint}" if p.hint else "")


def echo_warnings(problems: list[Problem]) -> None:
    for p in problems:
        typer.echo(format_warning(p), err=True)


def follow(
    store: Store,
    backend: Backend,
    dag_id: str,
    as_json: bool = False,
    graph: bool = False,
    tasks: bool = False,
    poll: Callable[[], DagStatus] | None = None,
) -> None:
    """The one follow loop (status --watch, submit --watch, watch). `poll()` returns the DAG's status; by default a
    plain read, `slurmdag watch` passes one that also reconciles.

    On a terminal the view is redrawn in place (rich); through a pipe each change is one appended line, and the
    final table follows. A DAG that did not complete ends with the logs to look at (exit 1)."""
    from slurmdag.model.states import DagState
    from slurmdag.runs.status import collect
    from slurmdag.views.status_views import status_json, status_table, status_tree

    read = poll or (lambda: collect(store, backend, dag_id))
    interval = WATCH_FIRST_INTERVAL
    last = None
    view = None if as_json else (_LiveView(graph) if sys.stdout.isatty() else _PlainView())
    try:
        while True:
            status = read()
            shown = (status.state, status.counts(), [(a.name, a.state, _task_counts(a)) for a in status.nodes])
            if view is not None:
                view.show(status, changed=shown != last)
            if shown != last:
                interval = WATCH_FIRST_INTERVAL  # back off only while nothing changes
            last = shown
            if status.terminal:
                break
            time.sleep(interval)
            interval = min(interval * 1.5, WATCH_MAX_INTERVAL)
    finally:
        if view is not None:
            view.close()
    failed = failed_logs_of(store, status)
    if as_json:
        echo_json(status_json(status, failed_logs_of(store, status, every_task=True), outputs_of(store, status)))
    elif isinstance(view, _LiveView):
        from slurmdag.views.status_views import failed_log_lines

        for line in failed_log_lines(status, failed):
            typer.echo(line)
    else:
        typer.echo("")
        if graph:
            from slurmdag.views.status_views import failed_log_lines

            typer.echo("\n".join([status_tree(status), *failed_log_lines(status, failed)]))
        else:
            typer.echo(status_table(status, tasks=tasks, failed=failed))
    if status.state is not DagState.COMPLETED:
        # An error rather than typer.Exit(1): main() runs the app with standalone_mode=False, which
        # swallows typer.Exit's code.
        message = f"DAG {dag_id} ended {status.state}"
        if failed:
            first = failed[0]
            message += f"\nsee: slurmdag logs {dag_id} {first.allocation}" + (
                f" --task {first.task}" if first.task is not None else ""
            )
        raise DagNotCompletedError(message)


def _task_counts(alloc) -> tuple:
    return tuple(sorted(alloc.task_counts().items())) if alloc.tasks is not None else ()


def _clock() -> str:
    return time.strftime("%H:%M:%S")


class _LiveView:
    """Redraws one rich view in place on the terminal."""

    def __init__(self, graph: bool):
        from rich.console import Console
        from rich.live import Live

        self.graph = graph
        self.console = Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def show(self, status: DagStatus, changed: bool) -> None:
        from slurmdag.views.live_view import live_renderable

        view = live_renderable(status, _clock(), graph=self.graph, height=self.console.size.height)
        self.live.update(view, refresh=True)  # every poll: the clock says when Slurm was last read

    def close(self) -> None:
        self.live.stop()


class _PlainView:
    """Appends one line per change: readable in a log file or by another program."""

    def __init__(self) -> None:
        self.previous: DagStatus | None = None

    def show(self, status: DagStatus, changed: bool) -> None:
        from slurmdag.views.live_view import change_lines

        if not changed:
            return
        for line in change_lines(self.previous, status, _clock()):
            typer.echo(line)
        self.previous = status

    def close(self) -> None:
        pass
