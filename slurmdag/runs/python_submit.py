"""Submitting a Workflow from Python: `handle = wf.submit()` (docs/python-api.md).

The same path as `slurmdag submit`: compile (capped by the site's max_allocations), admission (policy, pre-flight,
lanes), waiting for room in Slurm's job table, then the gated all-or-nothing submission. Python steps' functions
and arguments are cloudpickled before anything is submitted (an argument that cannot be pickled is an InputError,
nothing submitted) and written into the DAG's run folder before its first job, with a spec per step saying where
its parents' results are (runs/pystep.py reads both in the job).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from slurmdag.backends.base import Backend
from slurmdag.compiler import api
from slurmdag.compiler.pysteps import PythonStep
from slurmdag.model import run_layout
from slurmdag.model.errors import InputError, Problem, SubmitError
from slurmdag.policy import admission
from slurmdag.runs import pystep
from slurmdag.runs.dag_handle import DagHandle, open_backend
from slurmdag.runs.submit import CASCADE_NATIVE, submit_plan
from slurmdag.state.store import DagRecord, Store, atomic_write


class Workflow(api.Workflow):
    """`slurmdag.Workflow`: the builder of compiler/api.py, plus `submit()`."""

    def submit(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        log_dir: str | PathLike[str] | None = None,
        cascade: str = CASCADE_NATIVE,
        template_dirs: Sequence[str | PathLike[str]] = (),
        base_dir: str | PathLike[str] | None = None,
        store: Store | None = None,
        backend: Backend | None = None,
    ) -> DagHandle:
        """Submit the workflow as `slurmdag submit` does (all or nothing) and return its DagHandle."""
        return submit_workflow(self, overrides, log_dir, cascade, template_dirs, base_dir, store, backend)


def submit_workflow(
    wf: api.Workflow,
    overrides: Mapping[str, str] | None = None,
    log_dir: str | PathLike[str] | None = None,
    cascade: str = CASCADE_NATIVE,
    template_dirs: Sequence[str | PathLike[str]] = (),
    base_dir: str | PathLike[str] | None = None,
    store: Store | None = None,
    backend: Backend | None = None,
) -> DagHandle:
    cap = admission.allocation_cap()
    for warning in cap.warnings:
        warnings.warn(str(warning), stacklevel=3)
    plan = wf.compile(overrides, template_dirs, cap.value, base_dir)
    steps = wf.python_steps()
    calls = serialise(steps)
    backend = backend if backend is not None else open_backend()
    admitted = admission.admit(plan, backend)
    for note in admitted.notes:
        warnings.warn(note, stacklevel=3)
    admitted.raise_if_refused()
    if admitted.verdict is not None and admitted.verdict.wait_for_room:
        admission.wait_for_room(admitted, backend)
    store = store if store is not None else Store()
    search_path = submitter_path()

    def write_calls(record: DagRecord) -> None:
        if steps and record.run_dir is None:
            raise SubmitError("this DAG has no run folder for its Python steps")
        for name, step in steps.items():
            write_step(str(record.run_dir), step, calls[name], search_path)

    record = submit_plan(
        admitted.plan,
        store,
        backend,
        cascade=cascade,
        log_dir=None if log_dir is None else os.fspath(log_dir),
        before_jobs=write_calls,
    )
    return DagHandle(record.dag_id, store, backend)


def serialise(steps: Mapping[str, PythonStep]) -> dict[str, bytes]:
    """Each step's function and arguments, cloudpickled (functions of `__main__` and notebooks by value). What
    cannot be pickled is an InputError naming the step, before anything is submitted."""
    import cloudpickle

    out, problems = {}, []
    for name, step in steps.items():
        try:
            out[name] = cloudpickle.dumps(step.payload())
        except Exception as ex:  # noqa: BLE001 - pickling runs user code (__reduce__): any error is the user's
            problems.append(
                Problem(
                    f"Python step {name!r}: its function or arguments cannot be serialised: {type(ex).__name__}: {ex}",
                    f"{api.PYTHON_SOURCE}:{name}",
                    hint="pass data (numbers, strings, lists, arrays...) or a path to it, not open files, locks or "
                    "connections",
                )
            )
    if problems:
        raise InputError(problems)
    return out


def submitter_path() -> list[str]:
    """The folders of the submitting program's own code on its sys.path (its script's folder or the current one,
    $PYTHONPATH entries...; not the interpreter's own library folders): the job puts them first on its sys.path,
    so a function pickled by reference (one in an importable module) imports there as it does here."""
    system = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    found = []
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        if not os.path.isdir(folder) or folder in found:
            continue
        if any(folder == s or folder.startswith(s + os.sep) for s in system):
            continue  # the standard library and site-packages: the job's interpreter has its own
        if "site-packages" in folder.split(os.sep) or "dist-packages" in folder.split(os.sep):
            continue  # a virtual environment's libraries: the step's interpreter brings its own
        found.append(folder)
    return found


def write_step(run_dir: str, step: PythonStep, call: bytes, search_path: list[str]) -> None:
    """One step's call and spec in the run folder (before any job of the DAG can start)."""
    folder = Path(run_dir) / pystep.PYTHON_DIR_NAME
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    pystep.write_atomic(pystep.call_path(run_dir, step.name), call)
    spec: dict[str, Any] = {
        "format": pystep.FORMAT,
        "name": step.name,
        "dir": str(run_layout.outputs_dir(run_dir, step.name)),
        "tasks": None if step.tasks is None else len(step.tasks),
        "parents": {
            parent: {"dir": str(run_layout.outputs_dir(run_dir, parent)), "tasks": tasks}
            for parent, tasks in step.parents.items()
        },
        "sys_path": search_path,
    }
    atomic_write(pystep.spec_path(run_dir, step.name), json.dumps(spec, indent=1), durable=False)
