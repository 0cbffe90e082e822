"""What a DAG's jobs published: read from its run folder (model/run_layout.py), never from Slurm.

`slurmdag outputs` and `status --json` show it. A value is a file's text (UTF-8; undecodable bytes shown as U+FFFD);
a file larger than MAX_VALUE_BYTES is cut there and marked. Files whose names start with `.` are slurmdag's own:
`.result.json` is a Python step's return value (shown as its JSON), the rest is left to the Python API.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmdag.model import run_layout
from slurmdag.model.plan import Plan
from slurmdag.runs import logs, pyresults
from slurmdag.state.store import DagRecord, Store

MAX_VALUE_BYTES = 1 << 20  # a value shown or printed is cut after 1 MiB


def run_dir_of(store: Store, record: DagRecord) -> Path:
    """The DAG's run folder: the one it was submitted with; a DAG recorded before run folders gets the default."""
    return Path(record.run_dir) if record.run_dir else logs.run_dir_for(store, record.dag_id, base=None)


@dataclass
class Published:
    """What one job (a single job, or one task of a task group) published."""

    values: dict[str, str] = field(default_factory=dict)  # output name -> value, in name order
    truncated: list[str] = field(default_factory=list)  # names whose value was longer than MAX_VALUE_BYTES
    missing: list[str] = field(default_factory=list)  # declared outputs not (yet) written
    result: Any = None  # a Python step's return value (.result.json), if any
    has_result: bool = False
    result_repr: str | None = None  # a Python step's return value as repr() (runs/pyresults.py), cut
    error: str | None = None  # "<type>: <message>" when a Python step raised


@dataclass
class AllocationOutputs:
    name: str
    declared: list[str]
    single: Published | None = None  # a single job
    tasks: dict[int, Published] | None = None  # a task group: task index -> what it published
    python_step: bool = False  # a step of the Python API: its return value is its output

    @property
    def any_published(self) -> bool:
        pubs = [self.single] if self.single is not None else list((self.tasks or {}).values())
        return any(p.values or p.has_result or p.result_repr is not None or p.error for p in pubs)


def read_folder(folder: Path, declared: list[str]) -> Published:
    out = Published()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    for name in names:
        path = folder / name
        if name == run_layout.RESULT_JSON:
            try:
                out.result, out.has_result = json.loads(path.read_text(encoding="utf-8")), True
            except (OSError, ValueError):
                pass
            continue
        if name.startswith(".") or not path.is_file():
            continue  # slurmdag's own files, temporary files of a write in progress, task folders
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_VALUE_BYTES + 1)
        except OSError:
            continue
        if len(data) > MAX_VALUE_BYTES:
            data = data[:MAX_VALUE_BYTES]
            out.truncated.append(name)
        out.values[name] = data.decode("utf-8", errors="replace").rstrip("\n")
    out.missing = [n for n in declared if n not in out.values]
    return out


def task_indexes(plan: Plan, name: str) -> list[int] | None:
    """A task group's task indexes (over all its parts), None for a single job."""
    job = plan.job(name)
    if not job.array:
        return None
    return logs.tasks_of(plan, name)


def read_outputs(run_dir: Path, plan: Plan, allocation: str | None = None) -> list[AllocationOutputs]:
    """Every allocation's (or one allocation's) published outputs, in plan order."""
    out: list[AllocationOutputs] = []
    for job in plan.allocations():
        if allocation is not None and job.name != allocation:
            continue
        folder = run_layout.outputs_dir(run_dir, job.name)
        entry = AllocationOutputs(job.name, list(job.outputs))
        indexes = task_indexes(plan, job.name)
        if indexes is None:
            entry.single = read_folder(folder, entry.declared)
        else:  # the tasks that made their folder (a large group that has not run costs nothing)
            try:
                made = sorted(int(n) for n in os.listdir(folder) if n.isdigit())
            except OSError:
                made = []
            entry.tasks = {i: read_folder(folder / str(i), entry.declared) for i in made}
        out.append(entry)
    _add_python_results(run_dir, out)
    return out


def _add_python_results(run_dir: Path, found: list[AllocationOutputs]) -> None:
    """Python steps (the Python API): their return value's repr and a raised exception, per task."""
    steps = set(pyresults.python_steps(run_dir))
    for entry in found:
        if entry.name not in steps:
            continue
        entry.python_step = True
        try:
            shown = pyresults.shown_results(run_dir, entry.name)
        except Exception:  # noqa: BLE001 - a result that cannot be unpickled here is shown as its JSON or not at all
            continue
        for r in shown:
            if r.task is None:
                target = entry.single = entry.single or Published()
            else:
                entry.tasks = entry.tasks if entry.tasks is not None else {}
                target = entry.tasks.setdefault(r.task, Published())
            target.result_repr, target.error = r.repr, r.error
            if r.has_json and not target.has_result:
                target.result, target.has_result = r.json, True
