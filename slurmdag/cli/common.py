"""What several commands share: the store and backend they act on, JSON output, and the one follow loop."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from slurmdag.model.errors import DagNotCompletedError

if TYPE_CHECKING:
    from slurmdag.backends.base import Backend
    from slurmdag.runs.status import DagStatus
    from slurmdag.state.store import Store

# --watch polling: one batched query per poll, starting fast and backing off so a long DAG costs little.
WATCH_FIRST_INTERVAL = 2.0
WATCH_MAX_INTERVAL = 30.0


def open_backend() -> Backend:
    from slurmdag.backends import default_backend

    return default_backend()


def open_store() -> Store:
    from slurmdag.state.store import Store

    return Store()


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


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
    plain read, `slurmdag watch` passes one that also reconciles."""
    from slurmdag.model.states import DagState
    from slurmdag.runs.status import collect
    from slurmdag.views.status_views import status_json, status_table, status_tree

    read = poll or (lambda: collect(store, backend, dag_id))
    interval = WATCH_FIRST_INTERVAL
    last = None
    while True:
        status = read()
        shown = (status.state, status.counts(), [(a.name, a.state) for a in status.nodes])
        if shown != last and not as_json:
            typer.echo(status_tree(status) if graph else status_table(status, tasks=tasks))
            typer.echo("")
        if shown != last:
            interval = WATCH_FIRST_INTERVAL  # back off only while nothing changes
        last = shown
        if status.terminal:
            if as_json:
                echo_json(status_json(status))
            if status.state is not DagState.COMPLETED:
                # An error rather than typer.Exit(1): main() runs the app with standalone_mode=False, which
                # swallows typer.Exit's code.
                raise DagNotCompletedError(f"DAG {dag_id} ended {status.state}")
            return
        time.sleep(interval)
        interval = min(interval * 1.5, WATCH_MAX_INTERVAL)
