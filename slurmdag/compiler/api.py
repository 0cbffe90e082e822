"""Build a workflow in Python; it compiles to the same Plan as the equivalent YAML.

    wf = Workflow("training-pipeline", defaults={"partition": "debug"}, params={"lr": 0.01})
    pre = wf.allocation("preprocess", "python preprocess.py", nodes=2, walltime="2h")
    train = wf.allocation("train", "torchrun train.py --lr={{ params.lr }}", depends_on=[pre])
    wf.allocation("notify-failure", "python notify.py", depends_on=[train.failure()])
    plan = wf.compile()

Keyword arguments are the YAML allocation keys (docs/workflow-format.md). Values are checked by the same code as
YAML; problems are reported as `<python>:allocations[1].walltime: ...`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import yaml

from slurmdag.compiler import graph, pysteps
from slurmdag.compiler.compile import compile_allocations
from slurmdag.compiler.yamlsrc import MAX_DEPTH, from_python
from slurmdag.model.errors import InputError, Problem, shown
from slurmdag.model.plan import Plan

PYTHON_SOURCE = "<python>"


class Allocation:
    """A handle to an allocation of a Workflow; put it (or .failure() etc.) in another allocation's depends_on."""

    def __init__(self, workflow: Workflow, name: str):
        self.workflow = workflow
        self.name = name

    def on(self, condition: str) -> dict[str, str]:
        return {self.name: condition}

    def success(self) -> dict[str, str]:
        return self.on("success")

    def failure(self) -> dict[str, str]:
        return self.on("failure")

    def any(self) -> dict[str, str]:
        return self.on("any")

    def corresponding(self) -> dict[str, str]:
        return self.on("corresponding")

    def __repr__(self) -> str:
        return f"Allocation({self.name!r})"


class Step(Allocation):
    """A handle to a Python step (`Workflow.call` / `Workflow.map`). Passed as an argument of another step, it is an
    upstream `success` edge and stands for its return value (for a map: the list of every task's value, in order).
    """

    def __init__(self, workflow: Workflow, name: str, tasks: int | None = None):
        super().__init__(workflow, name)
        self.tasks = tasks  # a map's number of tasks (one array job); None for a call

    def __repr__(self) -> str:
        return f"Step({self.name!r})" if self.tasks is None else f"Step({self.name!r}, tasks={self.tasks})"


DependencyRef = Allocation | str | Mapping[str, str] | tuple


def _dep_entry(ref: Any) -> Any:
    """One depends_on entry in YAML form: a bare name for success, {name: condition} otherwise."""
    if isinstance(ref, Allocation):
        return ref.name
    if isinstance(ref, tuple) and len(ref) == 2:
        parent, condition = ref
        name = parent.name if isinstance(parent, Allocation) else parent
        if not isinstance(name, str):
            return ref  # validation says what is wrong with it
        return name if condition == "success" else {name: condition}
    if isinstance(ref, Mapping):
        return dict(ref)
    return ref  # strings, and anything wrong, which validation reports


class Workflow:
    def __init__(
        self,
        name: str,
        defaults: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        description: str | None = None,
        python: str | PathLike[str] | None = None,
    ):
        self.name = name
        # the interpreter Python steps run with (default: the one this program runs on); per step: resources["python"]
        self.python = python
        # kept as given when not a mapping: compile reports it (`<python>:defaults: ... must be a mapping`)
        self.defaults: Any = dict(defaults) if isinstance(defaults, Mapping) else defaults
        self.params: Any = dict(params) if isinstance(params, Mapping) else params
        self.description = description
        self._allocations: list[dict[str, Any]] = []
        self._python_steps: dict[str, pysteps.PythonStep] = {}

    def allocation(
        self,
        name: str,
        entrypoint: str | None = None,
        *,
        depends_on: Iterable[DependencyRef] = (),
        depends_on_any: Iterable[DependencyRef] = (),
        **keys: Any,
    ) -> Allocation:
        """Add an allocation; keys are the YAML allocation keys (walltime, nodes, tasks, matrix, env, ...)."""
        entry: dict[str, Any] = {"name": name}
        if entrypoint is not None:
            entry["entrypoint"] = entrypoint
        for key, refs in (("depends_on", depends_on), ("depends_on_any", depends_on_any)):
            deps = _dep_entries(refs)
            if deps != []:
                entry[key] = deps
        entry.update(keys)
        self._allocations.append(entry)
        return Allocation(self, name)

    def call(
        self,
        name: str,
        func: Callable[..., Any],
        /,
        *args: Any,
        resources: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Step:
        """Add a Python step: one job that runs `func(*args, **kwargs)` (docs/python-api.md).

        A step handle among the arguments (also inside lists, tuples and dicts) is an upstream `success` edge, and
        the job gets that step's return value in its place. `resources` holds the other allocation keys
        (`walltime`, `mem`, `cpus_per_task`, `partition`, `depends_on`, ...) and `python`, the interpreter.
        `name` and `func` are positional-only, so the function's own keyword arguments may use any name but
        `resources`."""
        index = len(self._allocations)
        self._check_callable(index, func)
        search = pysteps.HandleSearch(self._handle_of)
        call = search.split(args, kwargs)
        step = pysteps.PythonStep(name, func, self._python_for(resources), call=call, parents=search.found)
        return self._add_python_step(step, resources, None)

    def map(
        self,
        name: str,
        func: Callable[..., Any],
        iterable: Iterable[Any] | None = None,
        /,
        *,
        grid: Mapping[str, Iterable[Any]] | None = None,
        resources: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Step:
        """Add a Python step run once per item, as ONE array job: task i runs `func(items[i], **kwargs)`; with
        `grid={"a": [...], "b": [...]}` task i runs `func(**row_i, **kwargs)` for every combination of the values
        (the last key varies fastest). Its handle stands for the list of every task's return value, in order."""
        index = len(self._allocations)
        self._check_callable(index, func)
        where = f"{PYTHON_SOURCE}:allocations[{index}]"
        if (iterable is None) == (grid is None):
            raise InputError(
                Problem(
                    f"map {shown(name)}: give either the items or grid=..., not {'both' if grid else 'neither'}",
                    where,
                    hint='e.g. wf.map("score", score, [1, 2, 3]) or wf.map("sweep", train, grid={"lr": [0.1, 0.01]})',
                )
            )
        rows: list[tuple[list[Any], dict[str, Any]]]
        if grid is not None:
            if not isinstance(grid, Mapping) or not all(isinstance(k, str) for k in grid):
                raise InputError(
                    Problem(f"`grid` must map parameter names to lists of values, not {_kind(grid)}", where)
                )
            values = {}
            for key, items in grid.items():
                if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
                    raise InputError(
                        Problem(
                            f"grid[{key!r}] must be a list of values, not {_kind(items)}",
                            where,
                            hint='e.g. {"lr": [0.1, 0.01]}',
                        )
                    )
                values[key] = list(items)
            clash = sorted(set(values) & set(kwargs))
            if clash:
                raise InputError(Problem(f"grid and keyword arguments both set {', '.join(clash)}", where))
            rows = [([], {**row, **kwargs}) for row in pysteps.grid_rows(values)]
        else:
            if isinstance(iterable, Allocation):
                raise InputError(
                    Problem(
                        f"map {shown(name)}: the items must be known at submit (an array job's size is fixed when "
                        f"it is submitted), not the result of step {shown(iterable.name)}",
                        where,
                        hint="map over the items themselves, or call one step that loops over the result",
                    )
                )
            if isinstance(iterable, (str, bytes)) or not isinstance(iterable, Iterable):
                raise InputError(
                    Problem(f"map {shown(name)}: the items must be iterable, not {_kind(iterable)}", where)
                )
            rows = [([item], dict(kwargs)) for item in iterable]
        if not rows:
            raise InputError(Problem(f"map {shown(name)} has no items: an array job needs at least one task", where))
        search = pysteps.HandleSearch(self._handle_of)
        tasks = [search.split(args, kw) for args, kw in rows]
        step = pysteps.PythonStep(name, func, self._python_for(resources), tasks=tasks, parents=search.found)
        return self._add_python_step(step, resources, len(tasks))

    def python_steps(self) -> dict[str, pysteps.PythonStep]:
        """The Python steps by name (what `submit` serialises)."""
        return dict(self._python_steps)

    def _check_callable(self, index: int, func: Any) -> None:
        if not callable(func):
            raise InputError(
                Problem(
                    f"a Python step needs a function to call, not {_kind(func)}",
                    f"{PYTHON_SOURCE}:allocations[{index}]",
                    hint='wf.call(name, func, *args, **kwargs), e.g. wf.call("square", square, 3)',
                )
            )

    def _handle_of(self, value: Any) -> tuple[str, int | None] | None:
        if not isinstance(value, Allocation):
            return None
        if value.workflow is not self:
            raise InputError(
                Problem(
                    f"the handle of {shown(value.name)} belongs to another Workflow ({shown(value.workflow.name)})",
                    f"{PYTHON_SOURCE}:allocations[{len(self._allocations)}]",
                )
            )
        if not isinstance(value, Step):
            raise InputError(
                Problem(
                    f"{shown(value.name)} is a shell allocation: it has no return value to pass as an argument",
                    f"{PYTHON_SOURCE}:allocations[{len(self._allocations)}]",
                    hint="put it in resources={'depends_on': [handle]} to wait for it",
                )
            )
        return value.name, value.tasks

    def _python_for(self, resources: Mapping[str, Any] | None) -> str:
        chosen = resources.get("python") if isinstance(resources, Mapping) else None
        python = chosen if chosen is not None else self.python if self.python is not None else sys.executable
        if not isinstance(python, (str, PathLike)) or not str(python):
            raise InputError(
                Problem(
                    f"`python` must be the path of an interpreter, not {_kind(python)}",
                    f"{PYTHON_SOURCE}:allocations[{len(self._allocations)}].python",
                    hint='e.g. python="/path/to/venv/bin/python"',
                )
            )
        return os.fspath(python)

    def _add_python_step(
        self, step: pysteps.PythonStep, resources: Mapping[str, Any] | None, tasks: int | None
    ) -> Step:
        index = len(self._allocations)
        keys: dict[str, Any] = {}
        if resources is not None:
            if not isinstance(resources, Mapping):
                raise InputError(
                    Problem(
                        f"`resources` must be a mapping of allocation keys, not {_kind(resources)}",
                        f"{PYTHON_SOURCE}:allocations[{index}].resources",
                        hint='e.g. resources={"walltime": "10m", "mem": "2G"}',
                    )
                )
            keys = {k: v for k, v in resources.items() if k != "python"}
        owned = sorted(set(keys) & set(pysteps.OWNED_KEYS))
        if owned:
            raise InputError(
                Problem(
                    f"a Python step sets {', '.join(owned)} itself; `resources` may not",
                    f"{PYTHON_SOURCE}:allocations[{index}].resources",
                    hint="use wf.map(...) for one task per item",
                )
            )
        if step.name in self._python_steps:
            raise InputError(
                Problem(f"duplicate Python step name {shown(step.name)}", f"{PYTHON_SOURCE}:allocations[{index}].name")
            )
        depends_on = keys.pop("depends_on", ())
        explicit = _dep_entries(depends_on)
        if not isinstance(explicit, list):
            explicit = [explicit]  # validation reports it, with its path
        data_edges = [p for p in step.parents if p not in explicit]
        if tasks is not None:
            keys["tasks"] = tasks
        handle = self.allocation(
            step.name,
            pysteps.entrypoint(step.python, step.name) if isinstance(step.name, str) else None,
            depends_on=[*data_edges, *explicit],
            **keys,
        )
        self._python_steps[step.name] = step
        return Step(self, handle.name, tasks)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            data["description"] = self.description
        if self.defaults is not None and self.defaults != {}:
            data["defaults"] = _plain(self.defaults)
        if self.params is not None and self.params != {}:
            data["params"] = _plain(self.params)
        data["allocations"] = [_plain(a) for a in self._allocations]
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=1000)

    def compile(
        self,
        overrides: Mapping[str, str] | None = None,
        template_dirs: Sequence[str | PathLike[str]] = (),
        max_allocations: int = graph.DEFAULT_MAX_ALLOCATIONS,
        base_dir: str | PathLike[str] | None = None,
    ) -> Plan:
        """The Plan, exactly as `compile_file` would give for `to_yaml()`; raises InputError listing every problem.

        `base_dir` is where relative `script:` paths start (default: the current directory).
        """
        problems = _argument_problems(overrides, template_dirs, max_allocations, base_dir)
        if problems:
            raise InputError(problems)
        root = from_python(self.to_dict(), file=PYTHON_SOURCE)
        return compile_allocations(
            root, PYTHON_SOURCE, base_dir or os.getcwd(), overrides, template_dirs, max_allocations
        )


def _dep_entries(refs: Any) -> Any:
    """depends_on / depends_on_any as YAML would hold them: a list of entries. A single name or handle is one entry;
    a value that is no list at all (None, a number) is kept as given, for validation to report with its path."""
    if isinstance(refs, (str, Allocation, Mapping)):
        return [_dep_entry(refs)]
    if not isinstance(refs, Iterable):
        return refs
    return [_dep_entry(d) for d in refs]


def _argument_problems(overrides: Any, template_dirs: Any, max_allocations: Any, base_dir: Any) -> list[Problem]:
    """compile()'s own arguments, checked before anything else: a wrong type is an input error, not a TypeError."""
    problems = []

    def bad(name: str, message: str, hint: str) -> None:
        problems.append(Problem(message, f"{PYTHON_SOURCE}:{name}", hint=hint))

    if overrides is not None and not isinstance(overrides, Mapping):
        bad(
            "overrides",
            f"`overrides` must be a mapping of param name to value, not {_kind(overrides)}",
            'e.g. overrides={"lr": "0.1"}',
        )
    elif overrides is not None:
        for key, value in overrides.items():
            if not isinstance(value, (str, int, float)):
                bad(
                    f"overrides.{key}",
                    f"an override must be a string, number or boolean, not {_kind(value)}",
                    'strings are read as YAML scalars, as `--set` does: e.g. {"lr": "0.1"}',
                )
    if isinstance(template_dirs, (str, bytes, PathLike)) or not isinstance(template_dirs, Iterable):
        bad(
            "template_dirs",
            f"`template_dirs` must be a list of directories, not {_kind(template_dirs)}",
            'e.g. template_dirs=["my-templates"]',
        )
    elif not all(isinstance(d, (str, PathLike)) for d in template_dirs):
        bad("template_dirs", "`template_dirs` must hold directory paths (str or pathlib.Path)", 'e.g. ["my-templates"]')
    if isinstance(max_allocations, bool) or not isinstance(max_allocations, int) or max_allocations < 1:
        bad(
            "max_allocations",
            f"`max_allocations` must be a whole number of at least 1, not {_kind(max_allocations)}",
            "e.g. max_allocations=5000",
        )
    if base_dir is not None and not isinstance(base_dir, (str, PathLike)):
        bad("base_dir", f"`base_dir` must be a directory path, not {_kind(base_dir)}", 'e.g. base_dir="jobs"')
    return problems


def _kind(value: Any) -> str:
    """How a wrong argument is named in a message: its type, and its value when that reads well."""
    if value is None:
        return "None"
    if isinstance(value, (str, int, float)):
        return f"{type(value).__name__} {shown(value, 40)}"
    names: dict[type, str] = {list: "a list", tuple: "a tuple", dict: "a dict"}
    return names.get(type(value), f"an object of type {type(value).__name__}")


def _plain(value: Any, active: frozenset[int] = frozenset()) -> Any:
    """Tuples to lists (YAML has no tuples) so to_yaml and compile see the same data. A list or mapping that holds
    itself is left as it is (from_python reports it)."""
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in active or len(active) > MAX_DEPTH:
            return value
        inner = active | {id(value)}
        if isinstance(value, Mapping):
            return {k: _plain(v, inner) for k, v in value.items()}
        return [_plain(v, inner) for v in value]
    return value
