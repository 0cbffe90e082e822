"""The job side of a Python step: `PYTHON .../slurmdag/runs/pystep.py NAME`, run inside the step's Slurm job.

It reads the step's call (function and arguments, cloudpickled at submit time) and its spec (where its parents'
results are), puts each parent's return value where the submitter passed that parent's handle, calls the function
and stores what came of it in this job's outputs folder (docs/passing-data.md):

    .result.pickle     the return value, always (pickle; cloudpickle for what plain pickle cannot do)
    .result.json       the same value as JSON, when it is JSON-serialisable
    .exception.json    {"type", "message", "traceback"} when the function raised (the job then exits 1, so Slurm
    .exception.pickle  marks it FAILED and cancels its children); the exception itself, when it can be pickled

The file is run by path, not with `-m`, so it works under any interpreter that has cloudpickle (a `python:` venv
need not have slurmdag installed): it imports nothing of slurmdag and nothing but the standard library at load
time. The submit side imports it for the same file names and the reading functions.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

FORMAT = 1
PYTHON_DIR_NAME = "python"  # in the run folder: <name>.call.pickle and <name>.spec.json per Python step
CALL_SUFFIX = ".call.pickle"
SPEC_SUFFIX = ".spec.json"
# In an outputs folder (model/run_layout.py reserves the .result.* names for these).
RESULT_PICKLE = ".result.pickle"
RESULT_JSON = ".result.json"
EXCEPTION_JSON = ".exception.json"
EXCEPTION_PICKLE = ".exception.pickle"

ENV_RUN_DIR = "SLURMDAG_RUN_DIR"
ENV_TASK_INDEX = "SLURMDAG_TASK_INDEX"
ENV_OUTPUTS = "SLURMDAG_OUTPUTS"


def call_path(run_dir: str | os.PathLike[str], name: str) -> Path:
    return Path(run_dir) / PYTHON_DIR_NAME / f"{name}{CALL_SUFFIX}"


def spec_path(run_dir: str | os.PathLike[str], name: str) -> Path:
    return Path(run_dir) / PYTHON_DIR_NAME / f"{name}{SPEC_SUFFIX}"


# --- the call's arguments: a parent's handle is replaced by its result where it was ---


def put(container: Any, path: tuple[Any, ...], value: Any) -> Any:
    """`container` with the item at `path` (list/tuple indexes, dict keys) replaced by `value`; tuples (also named
    ones) are rebuilt, lists and dicts changed in place."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(container, tuple):
        items = list(container)
        items[key] = put(items[key], rest, value)
        make = getattr(type(container), "_make", None)
        return make(items) if make is not None else type(container)(items)
    container[key] = put(container[key], rest, value)
    return container


# --- results: written atomically, read back by children, `slurmdag outputs` and the DAG handle ---


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def has_result(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / RESULT_PICKLE).is_file()


def read_result(folder: str | os.PathLike[str]) -> Any:
    """The return value stored in an outputs folder (raises FileNotFoundError when there is none)."""
    with open(Path(folder) / RESULT_PICKLE, "rb") as f:
        return pickle.load(f)


def read_exception(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """{"type", "message", "traceback"} of the exception a step raised, or None when it raised none (yet)."""
    try:
        data = json.loads((Path(folder) / EXCEPTION_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_exception_object(folder: str | os.PathLike[str]) -> BaseException | None:
    """The raised exception itself, when it was picklable and unpickles here; else None."""
    try:
        with open(Path(folder) / EXCEPTION_PICKLE, "rb") as f:
            value = pickle.load(f)
    except Exception:  # noqa: BLE001 - a class that is not importable here: the JSON copy still says what it was
        return None
    return value if isinstance(value, BaseException) else None


def parent_value(parent: dict[str, Any]) -> Any:
    """A parent's return value; for a map, the list of every task's value, in task order."""
    tasks = parent.get("tasks")
    folder = Path(parent["dir"])
    if tasks is None:
        return read_result(folder)
    return [read_result(folder / str(i)) for i in range(tasks)]


def dumps(value: Any) -> bytes:
    """Plain pickle when it can (most values are data: no cloudpickle import, ~0.1 s of a job's start-up when the
    function came by reference), cloudpickle for the rest (lambdas, classes of __main__...)."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - PicklingError, AttributeError, TypeError...: let cloudpickle try
        import cloudpickle

        return bytes(cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def store_result(folder: Path, value: Any) -> None:
    write_atomic(folder / RESULT_PICKLE, dumps(value))
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        (folder / RESULT_JSON).unlink(missing_ok=True)  # a stale copy from an earlier attempt would lie
        return
    write_atomic(folder / RESULT_JSON, text.encode("utf-8"))


def store_exception(folder: Path, ex: BaseException) -> None:
    described = {
        "type": _qualified(type(ex)),
        "message": str(ex),
        "traceback": "".join(traceback.format_exception(type(ex), ex, ex.__traceback__)),
    }
    write_atomic(folder / EXCEPTION_JSON, json.dumps(described).encode("utf-8"))
    try:
        write_atomic(folder / EXCEPTION_PICKLE, dumps(ex))
    except Exception:  # noqa: BLE001 - an unpicklable exception is still described by the JSON copy
        (folder / EXCEPTION_PICKLE).unlink(missing_ok=True)


def _qualified(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"


# --- the job ---


def run(name: str, run_dir: str, task: int | None) -> None:
    """Call step `name` (task `task` of a map) and store its result; re-raise what the function raised."""
    spec = json.loads(spec_path(run_dir, name).read_text(encoding="utf-8"))
    if spec.get("tasks") is None:
        task = None  # a call: a task index in the environment is inherited (a job packed into an array, say)
    elif task is None:
        raise SystemExit(f"pystep.py: {name} is a map of {spec['tasks']} tasks, but SLURMDAG_TASK_INDEX is not set")
    folder = Path(spec["dir"]) if task is None else Path(spec["dir"]) / str(task)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (RESULT_PICKLE, RESULT_JSON, EXCEPTION_JSON, EXCEPTION_PICKLE):
        (folder / stale).unlink(missing_ok=True)  # a re-run (resume, redo) starts clean
    for entry in reversed(spec.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)  # where the submitting script's own modules are
    try:
        with open(call_path(run_dir, name), "rb") as f:
            call = pickle.load(f)
        func, one = call["func"], call["call"]
        if call["tasks"] is not None:
            one = call["tasks"][task]
        bound: Any = {"args": one["args"], "kwargs": one["kwargs"]}
        values: dict[str, Any] = {}
        for path, parent in one["refs"]:
            if parent not in values:
                values[parent] = parent_value(spec["parents"][parent])
            bound = put(bound, tuple(path), values[parent])
        value = func(*bound["args"], **bound["kwargs"])
    except BaseException as ex:
        store_exception(folder, ex)
        raise
    try:
        store_result(folder, value)
    except BaseException as ex:
        store_exception(folder, ex)
        raise


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: pystep.py NAME (inside a job of a slurmdag DAG)")
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        raise SystemExit("pystep.py: SLURMDAG_RUN_DIR is not set: run it inside a job of a slurmdag DAG")
    index = os.environ.get(ENV_TASK_INDEX, "")
    run(argv[1], run_dir, int(index) if index.isdigit() else None)


if __name__ == "__main__":
    # Run by path, the folder of this file is first on sys.path; the user's code must not see our modules there.
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    main(sys.argv)
