"""Merge a batch script's `#SBATCH` options with a workflow allocation's sbatch options. Pure.

The workflow wins, exactly as an sbatch command-line option beats the same `#SBATCH` line. Where sbatch treats
options as alternatives (e.g. `--mem` / `--mem-per-cpu`), a workflow value for one drops the script's others, so the
merged set never holds both (sbatch would refuse it). Every decision is recorded in `origins` so
`slurmdag compile` can show where each option came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from slurmdag.compiler.script_directives import ScriptDirectives
from slurmdag.model.errors import Problem
from slurmdag.model.sbatch_options import render_directive

# Options sbatch accepts only one of; setting one in the workflow replaces the script's others.
EXCLUSIVE_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"mem", "mem-per-cpu", "mem-per-gpu"}),
    frozenset({"exclusive", "oversubscribe"}),
    frozenset({"requeue", "no-requeue"}),
)

Source = Literal["script", "workflow"]


@dataclass(frozen=True)
class Origin:
    name: str  # sbatch long option
    value: str | None  # the value applied, or the one dropped
    source: Source
    line: int | None = None  # the #SBATCH line, for script options
    status: Literal["applied", "overridden", "replaced"] = "applied"  # replaced: dropped for an alternative
    by: str | None = None  # for overridden/replaced: the workflow option that won


@dataclass
class Merged:
    options: dict[str, str | None]  # sbatch long name -> value, sorted by name; owned options never appear
    origins: list[Origin]  # one entry per script or workflow option (and --array), applied or not
    array: str | None  # task group from the script's --array, unless the workflow has its own
    script_job_name: str | None  # the script's --job-name, kept as information only
    problems: list[Problem] = field(default_factory=list)  # errors (owned directives slurmdag cannot honour, ...)
    notes: list[Problem] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Human lines, e.g. `--nodes=2  (script line 3, overridden by workflow: 4)`."""
        out = []
        for o in self.origins:
            flag = f"--{o.name}" if o.value is None else f"--{o.name}={o.value}"
            where = "workflow" if o.source == "workflow" else f"script line {o.line}"
            if o.status == "applied":
                out.append(f"{flag}  ({where})")
            elif o.status == "overridden":
                out.append(f"{flag}  ({where}, overridden by workflow)")
            else:
                out.append(f"{flag}  ({where}, dropped: workflow sets --{o.by})")
        return out


def merge(
    script: ScriptDirectives,
    workflow: Mapping[str, str | None],
    workflow_array: str | None = None,
) -> Merged:
    """`workflow`: the allocation's sbatch options as long names (`time`, not `walltime`), owned ones excluded.

    `workflow_array`: the allocation's own array spec if it is a task group (it beats the script's --array).
    """
    last_line: dict[str, int] = {}
    for d in script.directives:
        last_line[d.name] = d.line
    script_opts = script.options()

    replaced_by: dict[str, str] = {}
    for group in EXCLUSIVE_GROUPS:
        chosen = [k for k in workflow if k in group]
        if chosen:
            for k in group:
                if k in script_opts and k not in workflow:
                    replaced_by[k] = chosen[0]

    origins: list[Origin] = []
    merged: dict[str, str | None] = {}
    for name, value in script_opts.items():
        line = last_line.get(name)
        if name in replaced_by:
            origins.append(Origin(name, value, "script", line, "replaced", replaced_by[name]))
        elif name in workflow:
            origins.append(Origin(name, value, "script", line, "overridden", name))
        else:
            origins.append(Origin(name, value, "script", line))
            merged[name] = value
    for name, value in workflow.items():
        origins.append(Origin(name, value, "workflow"))
        merged[name] = value
    # the task group is not an option slurmdag passes through, but where it came from is worth showing too
    if script.array is not None:
        status: Literal["applied", "overridden", "replaced"] = "overridden" if workflow_array is not None else "applied"
        origins.append(Origin("array", script.array, "script", last_line.get("array"), status, "array"))
    if workflow_array is not None:
        origins.append(Origin("array", workflow_array, "workflow"))

    return Merged(
        options=dict(sorted(merged.items())),
        origins=origins,
        array=workflow_array if workflow_array is not None else script.array,
        script_job_name=script.job_name,
        problems=list(script.problems),
        notes=list(script.notes),
    )


def directive_lines(options: Mapping[str, str | None], array: str | None = None) -> list[str]:
    """One `#SBATCH --long=value` line per option, sorted, so rendered scripts are deterministic."""
    items = dict(options)
    if array is not None:
        items["array"] = array
    return [f"#SBATCH {render_directive(name, items[name])}" for name in sorted(items)]


def rebuild_script(script: ScriptDirectives, options: Mapping[str, str | None], array: str | None = None) -> str:
    """The script again: its shebang, a fresh directive block from `options`, then its body verbatim."""
    head = [script.shebang or "#!/bin/bash", *directive_lines(options, array)]
    return "\n".join(head) + "\n" + script.body
