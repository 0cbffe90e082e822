"""`auto_array: true`: which sibling allocations can share one array job. Pure.

Siblings with identical sbatch options (walltime and interpreter included) and an identical dependency expression
are packed into one array job: task i runs member i's own body (the script dispatches on SLURM_ARRAY_TASK_ID), and
every edge to or from a member names that task alone (`afterok:<array>_<i>`, which Slurm 22.05 decides per task:
docs/semantics.md, "Automatic arrays"). Packing changes how many jobs Slurm is asked to make, never what runs when.

Not packed, with the reason `compile` shows:
  a task group      -- already an array of its own (an array of arrays does not exist);
  `retries`         -- a retrying allocation notes its attempts in its job's comment, which all tasks would share;
  a non-shell `script:` (#!/usr/bin/env python, ...) -- the dispatch is shell code;
  `on_failure: stop`, `stop_if` -- their exit trap cancels the DAG's other jobs by job name, and array tasks share
                    one name;
  options differ    -- named: the first option in which it differs from the array it would have joined.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slurmdag.compiler import render
from slurmdag.compiler.script_directives import shell_kind
from slurmdag.model.plan import Dependency, Hosting, Plan, PlannedJob

# Tasks per packed array. Slurm's default MaxArraySize is 1001 (indexes 0-1000); more siblings make more arrays.
MAX_PACK = 1000


@dataclass(frozen=True)
class Pack:
    """One array job made of sibling allocations: task i runs members[i]."""

    members: tuple[str, ...]
    why: str  # what the members share, for `compile`


@dataclass(frozen=True)
class Unpacked:
    """An allocation left as its own job although siblings were packed (or it could have been), and why."""

    name: str
    why: str


@dataclass(frozen=True)
class Packing:
    packs: tuple[Pack, ...]
    unpacked: tuple[Unpacked, ...]

    def host_of(self) -> dict[str, tuple[int, int]]:
        """member name -> (pack number, task index)."""
        return {m: (p, i) for p, pack in enumerate(self.packs) for i, m in enumerate(pack.members)}


OptionKey = tuple[tuple[tuple[str, str | None], ...], int | None, str]


def shebang(job: PlannedJob) -> str:
    """The #! line of a job's compiled script (a `script:` keeps its own)."""
    return job.script.split("\n", 1)[0] if job.script.startswith("#!") else "#!/bin/bash"


def option_key(job: PlannedJob) -> OptionKey:
    """What must be equal for two allocations to be one array: their sbatch options, walltime and #! line."""
    return tuple(sorted(job.options.items())), job.walltime, shebang(job)


def ineligible(job: PlannedJob, shell: str) -> str | None:
    """Why `job` can never be a member of a packed array (None: it can)."""
    if job.kind != "allocation":
        return "generated job"
    if job.array or job.tasks:
        return "a task group is already an array"
    if job.retries:
        return "it has `retries` (attempts are noted in its own job's comment, which array tasks would share)"
    if shell == "none":
        return "its `script:` is not a shell script (array tasks are dispatched by shell code)"
    if job.on_failure == "stop":
        return "it has `on_failure: stop` (its exit trap cancels the DAG's other jobs by name, which array tasks share)"
    if job.stop_if is not None:
        return "it has `stop_if` (its exit trap cancels the DAG's other jobs by name, which array tasks share)"
    return None


def find_packs(
    jobs: Iterable[PlannedJob],
    dependency_of: Mapping[str, Dependency | None] | None = None,
    max_pack: int = MAX_PACK,
) -> Packing:
    """The arrays `auto_array` makes of `jobs` (plan order), members in plan order.

    `dependency_of`: each allocation's dependency where it is not its own `dependency` (a packed plan's members,
    whose host job carries it)."""
    if max_pack < 2:
        raise ValueError("a packed array needs room for 2 tasks")
    siblings: dict[Dependency | None, list[PlannedJob]] = {}
    left_out: dict[Dependency | None, list[Unpacked]] = {}
    for job in jobs:
        if job.kind != "allocation" or job.array or job.tasks or (job.host is not None and job.host.step is not None):
            continue  # generated jobs, task groups and group members (they run in their group's job)
        dependency = dependency_of.get(job.name, job.dependency) if dependency_of else job.dependency
        why = ineligible(job, shell_kind(shebang(job)))
        if why is not None:
            left_out.setdefault(dependency, []).append(Unpacked(job.name, why))
        else:
            siblings.setdefault(dependency, []).append(job)
    # An allocation that cannot be packed is worth a word only when it has siblings it could have joined.
    unpacked = [u for dep, us in left_out.items() if len(us) + len(siblings.get(dep, [])) >= 2 for u in us]
    packs: list[Pack] = []
    for dependency, group in siblings.items():
        if len(group) < 2:
            continue
        by_options: dict[OptionKey, list[PlannedJob]] = {}
        for job in group:
            by_options.setdefault(option_key(job), []).append(job)
        sets = [s for s in by_options.values() if len(s) >= 2]
        for members in sets:
            for start in range(0, len(members), max_pack):
                chunk = members[start : start + max_pack]
                if len(chunk) >= 2:
                    packs.append(Pack(tuple(j.name for j in chunk), _why(dependency, len(chunk))))
                else:
                    unpacked.append(Unpacked(chunk[0].name, f"the last of {len(members)} siblings over {max_pack}"))
        largest = max(by_options.values(), key=len)
        for alone in (s[0] for s in by_options.values() if len(s) == 1):
            other = largest[0] if largest[0] is not alone else None
            if other is None:
                continue
            unpacked.append(Unpacked(alone.name, differs(alone, other)))
    order = {m: i for i, m in enumerate(j for p in packs for j in p.members)}
    packs.sort(key=lambda p: order[p.members[0]])
    return Packing(tuple(packs), tuple(unpacked))


def _why(dependency: Dependency | None, n: int) -> str:
    if dependency is None:
        waits = "no parents"
    else:
        sep = "," if dependency.join == "all" else "?"
        waits = sep.join(f"{t.kind}:{t.parent}" for t in dependency.terms)
    return f"{n} siblings with identical options and dependencies ({waits})"


def differs(job: PlannedJob, other: PlannedJob) -> str:
    """Why `job` is not in the array of its sibling `other`: the first differing option, by name."""
    mine, theirs = job.options, other.options
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, "<unset>") != theirs.get(key, "<unset>"):
            return f"options differ from sibling {other.name!r}: {key} {_shown(mine, key)} vs {_shown(theirs, key)}"
    if job.walltime != other.walltime:
        return f"options differ from sibling {other.name!r}: walltime {job.walltime} s vs {other.walltime} s"
    return f"interpreter differs from sibling {other.name!r}: {shebang(job)} vs {shebang(other)}"


def _shown(options: Mapping[str, str | None], key: str) -> str:
    if key not in options:
        return "unset"
    value = options[key]
    return "(flag)" if value is None else repr(value)


# --- applying it: the plan with one host job per array ---


def host_name(first_member: str) -> str:
    """The plan name of a packed array job: `<first member>+array` ('+' is never in an allocation's name)."""
    return f"{first_member}+array"


def apply(workflow: str, jobs: list[PlannedJob], packing: Packing) -> list[PlannedJob]:
    """`jobs` with each pack's host job (kind "host", an array with one task per member) placed just before its
    first member; members keep their scripts and edges, and get `host` (their array and task) instead of a
    dependency. Members share their parents, so the host can take the first member's place in plan order."""
    hosted = packing.host_of()
    by_name = {j.name: j for j in jobs}
    out: list[PlannedJob] = []
    for job in jobs:
        where = hosted.get(job.name)
        if where is None:
            out.append(job)
            continue
        number, task = where
        members = [by_name[m] for m in packing.packs[number].members]
        name = host_name(members[0].name)
        if task == 0:
            out.append(_host_job(workflow, name, members))
        out.append(dataclasses.replace(job, dependency=None, host=Hosting(name, task=task)))
    return out


def _host_job(workflow: str, name: str, members: list[PlannedJob]) -> PlannedJob:
    first = members[0]
    host = PlannedJob(
        name=name,
        kind="host",
        options=dict(first.options),
        script="",
        array=f"0-{len(members) - 1}",
        tasks=len(members),
        dependency=first.dependency,
        walltime=first.walltime,
        members=tuple(m.name for m in members),
    )
    host.script = render.packed_array_script(workflow, host, [m.script for m in members])
    return host


def explain(plan: Plan) -> list[str]:
    """What `compile` says about auto_array: each packed array and why, and each sibling left out and why."""
    hosts = [j for j in plan.jobs if j.kind == "host" and j.members and plan.job(j.members[0]).host is not None]
    arrays = [h for h in hosts if plan.job(h.members[0]).host.task is not None]  # type: ignore[union-attr]
    if not arrays:
        return []
    dependency_of = {m: h.dependency for h in arrays for m in h.members}
    packing = find_packs(plan.allocations(), dependency_of)
    lines = []
    for host, pack in zip(arrays, packing.packs, strict=False):
        members = host.members
        shown = ", ".join(members) if len(members) <= 4 else f"{members[0]}, {members[1]}, ... {members[-1]}"
        lines.append(f"packed {len(members)} allocations into array job {host.name} ({shown}): {pack.why}")
    for left in packing.unpacked:
        lines.append(f"not packed: {left.name}: {left.why}")
    return lines


def unpack(plan: Plan) -> Plan:
    """The plan as if auto_array had been off: each packed allocation its own job again (its own script, its
    array's dependency), the array jobs gone. `resume`/`redo` re-submit from this form (docs/recovery.md)."""
    arrays = {j.name: j for j in plan.jobs if j.kind == "host" and j.array}
    if not arrays:
        return plan
    jobs = []
    for job in plan.jobs:
        if job.name in arrays:
            continue
        if job.host is not None and job.host.job in arrays:
            job = dataclasses.replace(job, host=None, dependency=arrays[job.host.job].dependency)
        jobs.append(job)
    return dataclasses.replace(plan, jobs=jobs)
