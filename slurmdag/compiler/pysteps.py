"""Python functions as steps (`Workflow.call` / `Workflow.map`): pure pieces of the builder.

A Python step is an ordinary allocation whose entrypoint runs slurmdag's job entry (`runs/pystep.py`) with the
chosen interpreter; what it calls is kept here, in memory, until `submit` serialises it into the DAG's run folder.
A step handle passed as an argument (also inside lists, tuples and dicts) is an upstream `success` edge: its place
is recorded as a path, and the job puts the parent's return value there when it starts (docs/python-api.md).
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The job entry is a file run by path under the step's interpreter (which may not have slurmdag installed): named
# here by its location in the package, not imported (compiler/ sits below runs/).
JOB_ENTRY = Path(__file__).resolve().parents[1] / "runs" / "pystep.py"

# Allocation keys a Python step sets itself: `resources` may not hold them.
OWNED_KEYS = ("name", "entrypoint", "script", "tasks", "array", "matrix")
# Containers searched for step handles; anything else is passed as it is (pickled by value).
_WALKED = (list, tuple, dict)
MAX_WALK_DEPTH = 100


@dataclass
class Call:
    """One call of a step's function: positional and keyword arguments with every step handle replaced by None,
    and `refs`: (path from {"args": [...], "kwargs": {...}} to where a handle was, the parent's name)."""

    args: list[Any]
    kwargs: dict[str, Any]
    refs: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        return {"args": self.args, "kwargs": self.kwargs, "refs": self.refs}


@dataclass
class PythonStep:
    """What one Python step calls: `call` for Workflow.call, `tasks` (one Call per array task) for Workflow.map."""

    name: str
    func: Callable[..., Any]
    python: str
    call: Call | None = None
    tasks: list[Call] | None = None
    parents: dict[str, int | None] = field(default_factory=dict)  # parent name -> its task count (None: a call)

    def payload(self) -> dict[str, Any]:
        """What the job loads (cloudpickled at submit): the function and its arguments."""
        return {
            "format": 1,
            "func": self.func,
            "call": None if self.call is None else self.call.as_data(),
            "tasks": None if self.tasks is None else [t.as_data() for t in self.tasks],
        }


class HandleSearch:
    """Finds step handles inside arguments; `is_handle(obj)` -> the handle's (name, tasks), or None."""

    def __init__(self, is_handle: Callable[[Any], tuple[str, int | None] | None]):
        self.is_handle = is_handle
        self.found: dict[str, int | None] = {}

    def split(self, args: tuple[Any, ...] | list[Any], kwargs: Mapping[str, Any]) -> Call:
        refs: list[tuple[tuple[Any, ...], str]] = []
        root = {"args": list(args), "kwargs": dict(kwargs)}
        stripped = self._walk(root, (), refs, frozenset())
        return Call(stripped["args"], stripped["kwargs"], refs)

    def _walk(
        self, value: Any, path: tuple[Any, ...], refs: list[tuple[tuple[Any, ...], str]], seen: frozenset[int]
    ) -> Any:
        handle = self.is_handle(value)
        if handle is not None:
            name, tasks = handle
            self.found.setdefault(name, tasks)
            refs.append((path, name))
            return None
        if not isinstance(value, _WALKED) or id(value) in seen or len(path) > MAX_WALK_DEPTH:
            return value
        inner = seen | {id(value)}
        before = len(refs)
        if isinstance(value, dict):
            out: Any = {k: self._walk(v, (*path, k), refs, inner) for k, v in value.items()}
        else:
            out = [self._walk(v, (*path, i), refs, inner) for i, v in enumerate(value)]
        if len(refs) == before:
            return value  # no handle inside: passed as it is
        # a copy with the handles taken out, so the user's own containers are never changed
        if isinstance(value, list) or type(value) is dict:
            return out
        try:
            make = getattr(type(value), "_make", None)  # a named tuple
            return make(out) if make is not None else type(value)(out)
        except Exception:  # noqa: BLE001 - a subclass that cannot be rebuilt from its items: its plain form
            return out if isinstance(value, dict) else tuple(out)


def grid_rows(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (the last key varies fastest, as itertools.product does)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def entrypoint(python: str, name: str) -> str:
    """The step's shell command: its interpreter runs the job entry for this step."""
    return f"{shlex.quote(python)} {shlex.quote(str(JOB_ENTRY))} {shlex.quote(name)}"
