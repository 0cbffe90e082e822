"""A submitted DAG, seen from Python: `handle = wf.submit()` or `slurmdag.DagHandle(dag_id)` (docs/python-api.md).

Every method is one short call of the services `slurmdag status/cancel` use, so a DAG submitted from Python is an
ordinary DAG, and a handle can be made again in another process from the id alone. Nothing keeps running between
calls; `wait` polls Slurm (one squeue and one sacct per pass, backing off to WAIT_POLL_MAX seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from slurmdag.backends import choice
from slurmdag.backends.base import Backend
from slurmdag.model.errors import DagFailedError, StepFailure
from slurmdag.model.states import FAILURES, AllocationState, DagState
from slurmdag.policy.limits import read_site_backend
from slurmdag.policy.site_paths import site_policy_path
from slurmdag.runs import pyresults
from slurmdag.runs.cancel import CancelOutcome, cancel_dag
from slurmdag.runs.status import DagStatus, collect
from slurmdag.state.dag_refs import resolve
from slurmdag.state.store import Store, check_dag_id

WAIT_POLL_START = 0.5  # seconds between the first passes of `wait` (a short DAG is seen done soon)
WAIT_POLL_MAX = 5.0  # ... growing to this, so a long wait costs slurmctld little


def open_backend() -> Backend:
    """The backend `slurmdag` itself would use: $SLURMDAG_BACKEND, else the site config's, else auto."""
    requested, source = os.environ.get(choice.ENV_VAR), f"${choice.ENV_VAR}"
    if not requested:
        path = site_policy_path()
        requested, source = read_site_backend(path), f"site config {path}"
    if not requested:
        requested, source = "auto", "default"
    return choice.choose(requested, source).backend


class DagHandle:
    """A submitted DAG: `.id`, `.status()`, `.wait(timeout=None)`, `.result(name)`, `.results()`, `.cancel()`."""

    def __init__(self, dag_id: str, store: Store | None = None, backend: Backend | None = None):
        """`dag_id`: 8 hex characters, or `@` (your newest DAG), `@~N` (the one N before it), as on the command line."""
        self._store = store
        self._backend = backend
        self.id = check_dag_id(resolve(self.store, dag_id) if dag_id.startswith("@") else dag_id)

    def __repr__(self) -> str:
        return f"DagHandle({self.id!r})"

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store()
        return self._store

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_backend()
        return self._backend

    def status(self) -> DagStatus:
        """The DAG's state now, as `slurmdag status` shows it (`.state`, `.allocations()`...)."""
        return collect(self.store, self.backend, self.id)

    def wait(
        self,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> DagStatus:
        """Wait until the DAG has ended. Returns its final status when it Completed; raises DagFailedError (what
        failed, with a Python step's remote exception and traceback, what completed, what was cancelled) when it
        ended otherwise, TimeoutError after `timeout` seconds."""
        start = clock()
        pause = WAIT_POLL_START
        while True:
            status = self.status()
            if status.terminal:
                if status.state is DagState.COMPLETED:
                    return status
                raise self.failure(status)
            if timeout is not None and clock() - start >= timeout:
                raise TimeoutError(f"DAG {self.id} is still {status.state} after {timeout:g} s")
            left = None if timeout is None else max(0.0, start + timeout - clock())
            sleep(pause if left is None else min(pause, left))
            pause = min(WAIT_POLL_MAX, pause * 1.5)

    def failure(self, status: DagStatus) -> DagFailedError:
        """The DagFailedError of an ended DAG's status (what `wait` raises)."""
        run_dir = self._run_dir()
        failed: list[StepFailure] = []
        completed, cancelled, skipped = set(), set(), set()
        for alloc in status.allocations():
            if alloc.state in FAILURES or any(t.state in FAILURES for t in alloc.tasks or []):
                state = alloc.state if alloc.state in FAILURES else AllocationState.FAILED
                failed += pyresults.failures(run_dir, alloc.name, str(state))
            elif alloc.state is AllocationState.COMPLETED:
                completed.add(alloc.name)
            elif alloc.state is AllocationState.CANCELLED:
                cancelled.add(alloc.name)
            elif alloc.state is AllocationState.SKIPPED:
                skipped.add(alloc.name)
        return DagFailedError(self.id, str(status.state), failed, completed, cancelled, skipped)

    def result(self, name: str) -> Any:
        """A Python step's return value (a map's: the list of its tasks' values, in order); ResultNotFoundError when
        it has none (not finished, raised, cancelled, or not a Python step)."""
        return pyresults.result(self._run_dir(), name)

    def results(self) -> dict[str, Any]:
        """Every Python step's return value that exists, by step name."""
        run_dir = self._run_dir()
        out = {}
        for name in pyresults.python_steps(run_dir):
            try:
                out[name] = pyresults.result(run_dir, name)
            except pyresults.ResultNotFoundError:
                continue
        return out

    def cancel(self) -> CancelOutcome:
        """Cancel every unfinished job of the DAG, as `slurmdag cancel` does."""
        return cancel_dag(self.store, self.backend, self.id)

    def _run_dir(self) -> str | None:
        return self.store.load(self.id).run_dir
