"""Reading back what Python steps left in a DAG's run folder: return values, raised exceptions (docs/passing-data.md).

The job side writes these files (runs/pystep.py); the DAG handle (`DagHandle.result`, `DagFailedError`) and
`slurmdag outputs` read them here. A step is known by its spec file, written at submit, so a DAG's Python steps are
found from its run folder alone.
"""

from __future__ import annotations

import json
import os
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slurmdag.model.errors import ResultNotFoundError, StepFailure
from slurmdag.runs import pystep

_MISSING = object()


@dataclass(frozen=True)
class StepSpec:
    """Where one Python step's results are: `dir` (a map's tasks in dir/<index>), and its task count."""

    name: str
    dir: Path
    tasks: int | None

    def folders(self) -> list[tuple[int | None, Path]]:
        if self.tasks is None:
            return [(None, self.dir)]
        return [(i, self.dir / str(i)) for i in range(self.tasks)]


def read_spec(run_dir: str | os.PathLike[str], name: str) -> StepSpec | None:
    try:
        data = json.loads(pystep.spec_path(run_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return StepSpec(name, Path(data["dir"]), data.get("tasks"))


def python_steps(run_dir: str | os.PathLike[str] | None) -> list[str]:
    """The names of the DAG's Python steps (none when it has no run folder, or no Python steps)."""
    if run_dir is None:
        return []
    folder = Path(run_dir) / pystep.PYTHON_DIR_NAME
    try:
        names = [p.name[: -len(pystep.SPEC_SUFFIX)] for p in folder.iterdir() if p.name.endswith(pystep.SPEC_SUFFIX)]
    except OSError:
        return []
    return sorted(names)


def result(run_dir: str | os.PathLike[str] | None, name: str) -> Any:
    """Step `name`'s return value; a map's: the list of every task's value, in task order."""
    spec = read_spec(run_dir, name) if run_dir is not None else None
    if spec is None:
        raise ResultNotFoundError(f"{name!r} is not a Python step of this DAG: it has no result")
    values = []
    for task, folder in spec.folders():
        value = _read(folder)
        if value is _MISSING:
            where = name if task is None else f"{name}[{task}]"
            raised = pystep.read_exception(folder)
            why = (
                f"it raised {raised.get('type')}: {raised.get('message')}"
                if raised
                else "it has not finished successfully (see `slurmdag status`)"
            )
            raise ResultNotFoundError(f"{where} has no result: {why}")
        values.append(value)
    return values if spec.tasks is not None else values[0]


def _read(folder: Path) -> Any:
    try:
        return pystep.read_result(folder)
    except FileNotFoundError:
        return _MISSING


def failures(run_dir: str | os.PathLike[str] | None, name: str, state: str) -> list[StepFailure]:
    """What a failed allocation left: for a Python step, each raised exception (per task for a map); otherwise, or
    when nothing was written (killed for time or memory), one StepFailure with the state alone."""
    spec = read_spec(run_dir, name) if run_dir is not None else None
    found = []
    for task, folder in spec.folders() if spec is not None else []:
        raised = pystep.read_exception(folder)
        if raised is not None:
            found.append(
                StepFailure(
                    name,
                    state,
                    task,
                    str(raised.get("type")),
                    str(raised.get("message")),
                    str(raised.get("traceback")),
                    pystep.read_exception_object(folder),
                )
            )
    return found or [StepFailure(name, state)]


@dataclass(frozen=True)
class ShownResult:
    """A step's result for `slurmdag outputs`: its JSON text when it has one, else its repr (cut), per task."""

    name: str
    task: int | None
    json: Any  # the JSON value (None with has_json False)
    has_json: bool
    repr: str | None  # None: no result (see `error`)
    error: str | None = None  # "<type>: <message>" when the step raised


SHOWN_REPR = reprlib.Repr()
SHOWN_REPR.maxstring = 200
SHOWN_REPR.maxother = 200


def shown_results(run_dir: str | os.PathLike[str] | None, name: str) -> list[ShownResult]:
    """One entry per task (one for a call): the JSON copy when there is one, and the repr of the value."""
    spec = read_spec(run_dir, name) if run_dir is not None else None
    if spec is None:
        return []
    out = []
    for task, folder in spec.folders():
        raised = pystep.read_exception(folder)
        error = f"{raised.get('type')}: {raised.get('message')}" if raised else None
        try:
            data = json.loads((folder / pystep.RESULT_JSON).read_text(encoding="utf-8"))
            has_json = True
        except (OSError, ValueError):
            data, has_json = None, False
        out.append(ShownResult(name, task, data, has_json, result_repr(folder), error))
    return out


# Showing a result loads it only for its repr: a bigger pickle is named, not loaded.
MAX_SHOWN_PICKLE_BYTES = 16 << 20


def result_repr(folder: str | os.PathLike[str]) -> str | None:
    """The repr of the return value stored in an outputs folder (cut), None when there is none. A pickle over
    MAX_SHOWN_PICKLE_BYTES is not loaded, and one that cannot be loaded here (a class this interpreter cannot import)
    is said, not raised, so one such task does not hide the others."""
    path = Path(folder) / pystep.RESULT_PICKLE
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > MAX_SHOWN_PICKLE_BYTES:
        return f"<{size:,} bytes pickled: too big to show; DagHandle.result() loads it>"
    try:
        return SHOWN_REPR.repr(pystep.read_result(folder))
    except Exception as ex:  # noqa: BLE001 - unpickling runs the value's own code; whatever it raises is shown
        return f"<cannot be loaded here: {type(ex).__name__}: {ex}>"
