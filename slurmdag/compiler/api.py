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
from slurmdag.compiler.yamlsrc import from_python
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
        self.defaults = dict(defaults or {})
        self.params = dict(params or {})
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
        deps = [_dep_entry(d) for d in depends_on]
        if deps:
            entry["depends_on"] = deps
        any_deps = [_dep_entry(d) for d in depends_on_any]
        if any_deps:
            entry["depends_on_any"] = any_deps
        entry.update(keys)
        self._allocations.append(entry)
        return Allocation(self, name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            data["description"] = self.description
        if self.defaults:
            data["defaults"] = _plain(self.defaults)
        if self.params:
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
        root = from_python(self.to_dict())
        return compile_allocations(
            root, PYTHON_SOURCE, base_dir or os.getcwd(), overrides, template_dirs, max_allocations
        )


def _plain(value: Any) -> Any:
    """Tuples to lists (YAML has no tuples) so to_yaml and compile see the same data."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
