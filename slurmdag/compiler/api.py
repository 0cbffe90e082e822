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
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import yaml

from slurmdag.compiler import graph
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
    ):
        self.name = name
        # kept as given when not a mapping: compile reports it (`<python>:defaults: ... must be a mapping`)
        self.defaults: Any = dict(defaults) if isinstance(defaults, Mapping) else defaults
        self.params: Any = dict(params) if isinstance(params, Mapping) else params
        self.description = description
        self._allocations: list[dict[str, Any]] = []

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
