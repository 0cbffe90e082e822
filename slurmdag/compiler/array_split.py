"""Split task groups that exceed the cluster's MaxArraySize into several arrays, keeping every edge exact. Pure.

Slurm refuses an array index >= MaxArraySize, so a group's indexes are cut into chunks whose span is below it;
each chunk is submitted as an array re-based to 0 (`--array=0-10`), and its script shifts SLURM_ARRAY_TASK_ID
back by the chunk's first index (SLURMDAG_TASK_INDEX, matrix rows and the user's code see the group's own
indexes). The first chunk keeps the allocation's name; the others are jobs of kind "part" named `<alloc>+partN`.

Edges stay exact:
  afterok / afterany on a split parent (AND)  -> one term per chunk (all must hold);
  corresponding (aftercorr) between split groups -> child chunk k on parent chunk k: both groups have the same
      indexes (graph checks it), so they are cut the same way and task N still waits for task N;
  a `failure` edge or a depends_on_any (OR) on a split parent cannot be expressed per chunk: refused with a problem.
"""

from __future__ import annotations

import dataclasses

from slurmdag.compiler import render
from slurmdag.compiler.script_directives import shell_kind
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import Problem
from slurmdag.model.plan import Dependency, DependencyTerm, Plan, PlannedJob


@dataclasses.dataclass(frozen=True)
class Chunk:
    base: int  # the group's index of the chunk's Slurm task 0
    indexes: tuple[int, ...]  # the group's indexes in this chunk

    def slurm_array(self, throttle: int | None) -> str:
        return wt.format_array([i - self.base for i in self.indexes], throttle)


def chunks(array: str, max_array_size: int) -> tuple[list[Chunk], int | None]:
    """The chunks of an --array value under MaxArraySize (one chunk when it already fits) and its %N throttle."""
    spec = wt.parse_array(array)
    indexes, throttle = spec.indexes, spec.throttle
    out: list[Chunk] = []
    current: list[int] = []
    for i in indexes:
        if current and i - current[0] >= max_array_size:
            out.append(Chunk(current[0], tuple(current)))
            current = []
        current.append(i)
    if current:
        out.append(Chunk(current[0], tuple(current)))
    if len(out) == 1 and out[0].indexes[-1] < max_array_size:
        out = [Chunk(0, out[0].indexes)]  # fits as written: no re-basing
    return out, throttle


def part_name(name: str, number: int) -> str:
    return name if number == 1 else f"{name}+part{number}"


def needs_split(job: PlannedJob, max_array_size: int) -> bool:
    if not job.array:
        return False
    return wt.parse_array(job.array).indexes[-1] >= max_array_size


def split_plan(plan: Plan, max_array_size: int) -> tuple[Plan, list[Problem], list[str]]:
    """(the plan with oversized groups split, problems that forbid it, notes on what was split)."""
    problems: list[Problem] = []
    notes: list[str] = []
    file = plan.source or plan.workflow
    parts: dict[str, list[str]] = {}  # allocation -> names of its chunks' jobs, in chunk order
    new_jobs: dict[str, list[PlannedJob]] = {}
    for job in plan.jobs:
        if job.kind != "allocation" or not needs_split(job, max_array_size):
            continue
        cut, throttle = chunks(job.array or "", max_array_size)
        if shell_kind(job.script.split("\n", 1)[0]) == "none":
            problems.append(
                Problem(
                    f"task group {job.name!r} ({job.array}) does not fit the cluster's "
                    f"MaxArraySize={max_array_size} and "
                    "its script is not a shell script, so slurmdag cannot split it into several arrays",
                    file,
                    hint=f"keep its indexes below {max_array_size}, or wrap the script in a bash script",
                )
            )
            continue
        jobs = [_chunk_job(job, c, n + 1, len(cut), throttle, max_array_size) for n, c in enumerate(cut)]
        new_jobs[job.name] = jobs
        parts[job.name] = [j.name for j in jobs]
        notes.append(
            f"task group {job.name!r} ({job.array}) is split into {len(cut)} arrays: the cluster's MaxArraySize is "
            f"{max_array_size}"
            + (f"; its %{throttle} throttle applies to each array" if throttle and len(cut) > 1 else "")
        )
    if not parts:
        return plan, problems, notes
    problems += _unsplittable_edges(plan, parts, file, max_array_size)
    if problems:
        return plan, problems, notes
    chunk_of = {name: i for names in parts.values() for i, name in enumerate(names)}
    out: list[PlannedJob] = []
    for job in plan.jobs:
        for j in new_jobs.get(job.name, [job]):
            if j.dependency is not None:
                j = dataclasses.replace(j, dependency=_rewrite(j.dependency, parts, chunk_of.get(j.name)))
            out.append(j)
    return dataclasses.replace(plan, jobs=out), problems, notes


def _chunk_job(
    job: PlannedJob, chunk: Chunk, number: int, total: int, throttle: int | None, max_array_size: int
) -> PlannedJob:
    part = dataclasses.replace(
        job,
        name=part_name(job.name, number),
        kind=job.kind if number == 1 else "part",
        array=chunk.slurm_array(throttle),
        tasks=len(chunk.indexes),
        part_of=None if number == 1 else job.name,
        task_offset=chunk.base,
        option_sources=job.option_sources if number == 1 else None,
    )
    part.script = _shift_indexes(render.refreshed_script(part), chunk.base, number, total, job.name, max_array_size)
    return part


def _shift_indexes(script: str, base: int, number: int, total: int, name: str, size: int) -> str:
    """The index shift right after the #SBATCH block."""
    lines = script.split("\n")
    last = 0
    for i, line in enumerate(lines):
        if line.startswith("#SBATCH"):
            last = i
        elif i > 0 and line and not line.startswith("#"):
            break
    if base:
        lines[last + 1 : last + 1] = [
            f"# slurmdag: array {number} of {total} of task group {name} (the cluster's MaxArraySize is {size}):",
            f"# Slurm's task ids are shifted by {base} to the group's own indexes.",
            'SLURMDAG_SLURM_ARRAY_TASK_ID="$SLURM_ARRAY_TASK_ID"; export SLURMDAG_SLURM_ARRAY_TASK_ID',
            f"SLURM_ARRAY_TASK_ID=$((SLURM_ARRAY_TASK_ID + {base})); export SLURM_ARRAY_TASK_ID",
        ]
    return "\n".join(lines)


def _unsplittable_edges(plan: Plan, parts: dict[str, list[str]], file: str, size: int) -> list[Problem]:
    problems = []
    for job in plan.jobs:
        for edge in job.edges:
            if edge.parent in parts and (edge.condition == "failure" or edge.group == "any"):
                how = "a `failure` edge" if edge.condition == "failure" else "depends_on_any"
                problems.append(
                    Problem(
                        f"task group {edge.parent!r} does not fit the cluster's MaxArraySize={size} and must be split "
                        f"into {len(parts[edge.parent])} arrays, but {job.name!r} uses it in {how}, which cannot be "
                        "expressed exactly over several arrays",
                        file,
                        hint=f"keep {edge.parent!r}'s indexes below {size}, or depend on it with success/any",
                    )
                )
    return problems


def _rewrite(dep: Dependency, parts: dict[str, list[str]], chunk: int | None) -> Dependency:
    terms: list[DependencyTerm] = []
    for t in dep.terms:
        names = parts.get(t.parent)
        if names is None:
            terms.append(t)
        elif t.kind == "aftercorr" and chunk is not None:
            terms.append(DependencyTerm("aftercorr", names[chunk]))
        else:
            terms.extend(DependencyTerm(t.kind, n) for n in names)
    if dep.join == "any" and len(terms) != len(dep.terms):
        raise AssertionError("an OR over a split group reached _rewrite")  # refused by _unsplittable_edges
    return Dependency(dep.join, tuple(dict.fromkeys(terms)))
