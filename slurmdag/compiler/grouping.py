"""Groups: several allocations compiled into ONE Slurm job that runs each of them as a job step (docs/semantics.md,
"Groups"). Pure: a pass over the compiled jobs.

A group is exact, not approximate: every edge keeps its meaning. Inside the job, a small runner starts each member
as `srun --job-name=<member>` once its edges hold (the same conditions as outside, decided from the members' own
step outcomes). Edges into and out of the group stay native `--dependency` terms on the group's job, which is only
exact when the group's one Slurm outcome says what the child asked about:

- into the group: every outside edge enters one member (the *entry*), which has no parent inside, and every other
  member could not run unless the entry did (so a group job cancelled before it starts runs none, as unfused);
- out of the group: `any` edges from any member (`afterany:<group>`); `success`/`failure` edges from one member only
  (the group's *outcome member*: the job exits 0 exactly when it Completed), and `failure` edges only from a member
  with no parent inside (it runs whenever the job runs, so "the job failed" means "it ran and failed").

What cannot be expressed that way is refused with the member's place in the file (explicit `group:`), or, under
`fuse: auto`, simply not fused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from slurmdag.compiler import render
from slurmdag.compiler.script_directives import shell_kind
from slurmdag.compiler.spec import AllocationSpec, WorkflowSpec, problem_at
from slurmdag.model.errors import Problem, shown
from slurmdag.model.plan import Dependency, DependencyTerm, Edge, Hosting, PlannedJob
from slurmdag.model.slurm_values import format_walltime

HOST_SUFFIX = "+group"  # '+' cannot occur in an allocation name: a host job's name never collides with one
# Options a member may set differently from the others: they do not change what the group job asks Slurm for.
_PER_MEMBER_OPTIONS = frozenset()  # type: frozenset[str]
# A member's code travels as one argument of `srun ... bash -c CODE` (Linux: at most 128 KiB per argument).
MAX_MEMBER_SCRIPT = 100_000


def host_name(group: str) -> str:
    return f"{group}{HOST_SUFFIX}"


@dataclass
class GroupPlan:
    """One group as compiled: its members in run order, why it exists, and how its job is shaped."""

    name: str
    members: list[str]
    why: str  # "group: NAME" or "fuse: auto (a chain of equal allocations)"
    entry: str
    outcome: str | None  # the member whose outcome the job's exit status is (None: "no member failed")
    walltime: int | None
    walltime_why: str
    left_out: list[str] = field(default_factory=list)  # fuse: auto: chain members not fused, with why


@dataclass
class GroupingResult:
    jobs: list[PlannedJob]
    groups: list[GroupPlan]
    problems: list[Problem]
    notes: list[str]  # fuse: auto: chain members it did not fuse, and why


def apply(spec: WorkflowSpec, order: Sequence[AllocationSpec], jobs: list[PlannedJob]) -> GroupingResult:
    """The compiled jobs with every group (explicit `group:` and `fuse: auto` chains) turned into one host job.

    Explicit groups that cannot be exact come back as problems located at the member's `group:` key; `fuse: auto`
    only fuses what is exact and notes what it left out."""
    graph = _Graph(order)
    by_job = {j.name: j for j in jobs}
    problems: list[Problem] = []
    notes: list[str] = []
    groups: list[GroupPlan] = []
    explicit: dict[str, list[str]] = {}
    for a in order:
        if a.group is not None:
            explicit.setdefault(a.group, []).append(a.name)
    for name, members in explicit.items():
        bad = _explicit_problems(spec, graph, by_job, name, members)
        if bad:
            problems.extend(bad)
            continue
        entry, outcome, _ = check_group(graph, members)
        assert entry is not None
        groups.append(_plan(spec, graph, by_job, name, members, f"group: {name}", entry, outcome))
    if spec.fuse == "auto":
        taken = {m for g in groups for m in g.members} | {m for ms in explicit.values() for m in ms}
        for chain in _chains(graph, by_job, taken):
            segments, cut = _segments(graph, chain)
            notes.extend(cut)
            for segment in segments:
                if len(segment) < 2:
                    continue
                name = _auto_name(segment, explicit)
                entry, outcome, problem = check_group(graph, segment)
                assert problem is None and entry is not None, problem
                why = f"fuse: auto (a chain of {len(segment)} allocations with equal options)"
                groups.append(_plan(spec, graph, by_job, name, segment, why, entry, outcome))
                groups[-1].left_out = cut
    if problems or not groups:
        return GroupingResult(jobs, groups, problems, notes)
    return GroupingResult(_rewrite(spec, jobs, groups), groups, problems, notes)


def _explicit_problems(
    spec: WorkflowSpec, graph: _Graph, by_job: Mapping[str, PlannedJob], name: str, members: list[str]
) -> list[Problem]:
    def at(member: str, message: str, hint: str | None = None) -> Problem:
        a = graph.by_name[member]
        return problem_at(spec.file, a.where.get("group", a.node), message, hint)

    out = []
    for m in members:
        why = member_problem(graph.by_name[m], by_job[m])
        if why:
            out.append(at(m, f"allocation {shown(m)} cannot be a member of group {shown(name)}: {why}"))
    if out:
        return out
    if len(members) == 1:
        return [at(members[0], f"group {shown(name)} has one member only", "a group needs two or more members")]
    first = members[0]
    for m in members[1:]:
        if _resources(by_job[m]) != _resources(by_job[first]):
            diff = sorted(
                k
                for k in set(by_job[m].options) | set(by_job[first].options)
                if by_job[m].options.get(k, "<unset>") != by_job[first].options.get(k, "<unset>")
            )
            return [
                at(
                    m,
                    f"the members of group {shown(name)} cannot share one allocation: {shown(m)} asks for other "
                    f"sbatch options than {shown(first)} ({', '.join('--' + k for k in diff)})",
                    "members of a group run in one Slurm job, so they request the same options (walltime aside)",
                )
            ]
    _, _, problem = check_group(graph, members)
    if problem is not None:
        member, why = problem
        return [at(member, f"group {shown(name)} cannot be one Slurm job: {why}", "see docs/semantics.md, Groups")]
    return []


def _chains(graph: _Graph, by_job: Mapping[str, PlannedJob], taken: set[str]) -> list[list[str]]:
    """Maximal chains: each link the one `success` edge of a child from a parent that has no other child, between
    fusable allocations asking for the same options."""
    chains: list[list[str]] = []
    tail_of: dict[str, list[str]] = {}
    for name, a in graph.by_name.items():
        if name in taken or member_problem(a, by_job[name]) is not None:
            continue
        edges = graph.edges[name]
        chain: list[str] | None = None
        if len(edges) == 1 and edges[0].condition == "success" and edges[0].group == "all":
            parent = edges[0].parent
            if (
                parent in tail_of
                and len(graph.children[parent]) == 1
                and _resources(by_job[parent]) == _resources(by_job[name])
            ):
                chain = tail_of.pop(parent)
        if chain is None:
            chain = []
            chains.append(chain)
        chain.append(name)
        tail_of[name] = chain
    return [c for c in chains if len(c) > 1]


def _segments(graph: _Graph, chain: list[str]) -> tuple[list[list[str]], list[str]]:
    """The groups a chain makes, and notes on what was left out. Only its last member can have children outside
    (the links have no siblings); if one of them handles its failure, that member is left out: the group job
    could not tell 'it failed' from 'it never ran' (it has a parent inside)."""
    last = chain[-1]
    handlers = sorted(c for c, e in graph.children[last] if e.condition == "failure")
    if not handlers:
        return [chain], []
    note = (
        f"fuse: auto left {shown(last)} out of the group of {shown(chain[0])}..: its failure is handled outside "
        f"({', '.join(handlers)}), which a group job can express only for its first member"
    )
    return [chain[:-1]], [note]


def _auto_name(segment: list[str], explicit: Mapping[str, list[str]]) -> str:
    name = f"{segment[0]}..{segment[-1]}"
    while name in explicit:
        name += "_"
    return name


def _plan(
    spec: WorkflowSpec,
    graph: _Graph,
    by_job: Mapping[str, PlannedJob],
    name: str,
    members: list[str],
    why: str,
    entry: str,
    outcome: str | None,
) -> GroupPlan:
    g = spec.groups.get(name)
    if g is not None and g.walltime is not None:
        walltime: int | None = g.walltime
        walltime_why = "groups." + name + ".walltime"
    else:
        walltime = group_walltime(members, by_job)
        walltime_why = (
            "the sum of its members' walltimes (they run one at a time)"
            if walltime is not None
            else "the partition's default (a member has no walltime)"
        )
    return GroupPlan(name, members, why, entry, outcome, walltime, walltime_why)


def _rewrite(spec: WorkflowSpec, jobs: list[PlannedJob], groups: list[GroupPlan]) -> list[PlannedJob]:
    by_name = {j.name: j for j in jobs}
    host_of: dict[str, str] = {}
    hosts: dict[str, PlannedJob] = {}
    for g in groups:
        host = host_name(g.name)
        entry = by_name[g.entry]
        job = PlannedJob(
            name=host,
            kind="host",
            options=dict(entry.options),
            script="",
            dependency=entry.dependency,
            members=tuple(g.members),
            walltime=g.walltime,
        )
        job.why = _why(g)
        job.script = host_script(spec.name, g, job, [by_name[m] for m in g.members])
        render.check_script(host, job.script, dict(render.sbatch_options(job)), "written for the group")
        hosts[g.entry] = job
        for m in g.members:
            host_of[m] = host
    out: list[PlannedJob] = []
    for job in jobs:
        if job.kind == "join" and job.for_allocation in host_of and job.for_allocation not in hosts:
            continue  # a join between members: the group's runner decides that edge itself
        if job.name in hosts:
            out.append(_retarget(hosts[job.name], host_of))
        if job.name in host_of:
            out.append(replace(job, dependency=None, host=Hosting(host_of[job.name], step=job.name)))
        else:
            out.append(_retarget(job, host_of))
    return out


def _why(g: GroupPlan) -> list[str]:
    walltime = format_walltime(g.walltime) if g.walltime is not None else "none"
    out = [
        f"{g.why}: {len(g.members)} allocations in one Slurm job, each a job step named after it",
        f"--time={walltime}: {g.walltime_why}",
    ]
    if g.outcome is not None:
        out.append(f"exits as {g.outcome} ended (its children outside the group wait on the group job)")
    else:
        out.append("exits non-zero when a member failed")
    return out + g.left_out


def _retarget(job: PlannedJob, host_of: Mapping[str, str]) -> PlannedJob:
    """Terms on a group member become terms on its group's job."""
    if job.dependency is None or not any(t.parent in host_of for t in job.dependency.terms):
        return job
    terms = tuple(
        dict.fromkeys(
            DependencyTerm(
                "afterok" if t.kind == "aftercorr" and t.parent in host_of else t.kind, host_of.get(t.parent, t.parent)
            )
            for t in job.dependency.terms
        )
    )
    return replace(job, dependency=Dependency(job.dependency.join, terms))


class _Graph:
    """The user's edges by allocation name, both ways."""

    def __init__(self, order: Sequence[AllocationSpec]):
        self.by_name = {a.name: a for a in order}
        self.edges: dict[str, list[Edge]] = {a.name: _edges(a) for a in order}
        self.children: dict[str, list[tuple[str, Edge]]] = {a.name: [] for a in order}
        for a in order:
            for e in self.edges[a.name]:
                if e.parent in self.children:
                    self.children[e.parent].append((a.name, e))


def _edges(a: AllocationSpec) -> list[Edge]:
    return [Edge(d.parent, d.condition, "all") for d in a.depends_on] + [
        Edge(d.parent, d.condition, "any") for d in a.depends_on_any
    ]


def member_problem(a: AllocationSpec, job: PlannedJob) -> str | None:
    """Why `a` cannot be a group member at all (None: it can)."""
    if a.is_task_group:
        return "a task group (tasks/array/matrix) is an array job of its own and cannot run as one job step"
    if a.retries:
        return "`retries` re-runs a failed allocation inside its own job; a group member cannot have them yet"
    if job.on_failure == "stop":
        return "`on_failure: stop` cancels the DAG from the allocation's own job, which a group member does not have"
    if a.stop_if:
        # its exit trap finds the DAG by the job's name, which a job step does not carry
        return "`stop_if` stops the DAG from the allocation's own job, which a group member does not have"
    if job.kind != "allocation" or job.script.startswith("#!") is False:
        return "it has no batch script"
    if a.script is not None and shell_kind(a.script.shebang) == "none":
        return f"its script {shown(a.script_path)} is not a shell script (a member runs as `bash -c` in its step)"
    size = len(job.script.encode("utf-8"))
    if size > MAX_MEMBER_SCRIPT:
        return f"its script is {size:,} bytes; a member's script travels as one srun argument (at most 100 KB)"
    return None


def _resources(job: PlannedJob) -> dict[str, str | None]:
    return {k: v for k, v in job.options.items() if k not in _PER_MEMBER_OPTIONS}


def check_group(graph: _Graph, members: Sequence[str]) -> tuple[str | None, str | None, tuple[str, str] | None]:
    """(entry, outcome member, problem) of a would-be group; problem = (member, why) when it cannot be exact."""
    inside = set(members)
    # edges into the group
    entered = [m for m in members if any(e.parent not in inside for e in graph.edges[m])]
    entry = entered[0] if entered else members[0]
    for m in entered[1:]:
        return (
            entry,
            None,
            (
                m,
                f"{shown(m)} and {shown(entry)} both have parents outside the group; one group job "
                "can wait for the parents of one member only (its entry)",
            ),
        )
    if entered and any(e.parent in inside for e in graph.edges[entry]):
        return entry, None, (entry, f"{shown(entry)} has parents both inside and outside the group")
    if entered:
        doomed = {entry}
        for m in members:  # run order: parents first
            if m == entry:
                continue
            own = graph.edges[m]
            all_part = [e for e in own if e.group == "all"]
            any_part = [e for e in own if e.group == "any"]
            blocked = any(e.parent in doomed and e.condition != "any" for e in all_part) or (
                bool(any_part) and all(e.parent in doomed and e.condition != "any" for e in any_part)
            )
            if blocked:
                doomed.add(m)
            else:
                return (
                    entry,
                    None,
                    (
                        m,
                        f"{shown(m)} would run even if {shown(entry)} never ran (e.g. through an `any` edge), "
                        "but a group job cancelled before it starts runs none of its members",
                    ),
                )
    # edges out of the group
    outcome: str | None = None
    for m in members:
        for child, e in graph.children[m]:
            if child in inside or e.condition == "any":
                continue
            if outcome is not None and outcome != m:
                return (
                    entry,
                    outcome,
                    (
                        m,
                        f"{shown(child)} (outside the group) depends on {shown(m)} with `{e.condition}`, and "
                        f"another child outside on {shown(outcome)}; the group job has one outcome, so only one "
                        "member may have success/failure children outside it",
                    ),
                )
            outcome = m
            if e.condition == "failure" and any(p.parent in inside for p in graph.edges[m]):
                return (
                    entry,
                    outcome,
                    (
                        m,
                        f"{shown(child)} (outside the group) handles the failure of {shown(m)}, which may not run when "
                        "the group job runs (it has a parent inside the group): the job's outcome cannot tell "
                        f"'{m} failed' from '{m} never ran'",
                    ),
                )
    return entry, outcome, None


def group_walltime(members: Sequence[str], jobs: Mapping[str, PlannedJob]) -> int | None:
    """The sum of the members' walltimes (they run one at a time); None if a member has none."""
    total = 0
    for m in members:
        own = jobs[m].walltime
        if own is None or own == 0:  # no limit of its own (the partition's default), or UNLIMITED
            return None
        total += own
    return total


# --- the group job's script ----------------------------------------------------------------------------------------

_TESTS = {
    "success": '[ "$_sd_{i}" = ok ]',
    "corresponding": '[ "$_sd_{i}" = ok ]',
    "failure": '[ "$_sd_{i}" = failed ]',
}


def _condition(member: PlannedJob, index: Mapping[str, int]) -> str:
    """The shell test that says whether a member runs, from its parents' outcomes inside the group (edges from
    outside hold: the group job started)."""

    def test(e: Edge) -> str:
        if e.parent not in index or e.condition == "any":
            return "true"
        return _TESTS[e.condition].format(i=index[e.parent])

    all_part = [test(e) for e in member.edges if e.group == "all"]
    any_part = [test(e) for e in member.edges if e.group == "any"]
    parts = [t for t in all_part if t != "true"]
    if any_part and "true" not in any_part:
        parts.append("{ " + " || ".join(any_part) + "; }")
    return " && ".join(parts) or "true"


def _delimiter(script: str, i: int) -> str:
    base = f"SLURMDAG_MEMBER_{i}_END"
    lines = set(script.split("\n"))
    while base in lines:
        base += "_"
    return base


def outcome_member(jobs: Sequence[PlannedJob], host: PlannedJob) -> str | None:
    """The member whose outcome a group job's exit status is: the one with `success`/`failure` children outside."""
    inside = set(host.members)
    for job in jobs:
        if job.name in inside or job.kind != "allocation":
            continue
        for e in job.edges:
            if e.parent in inside and e.condition != "any":
                return e.parent
    return None


def rehost(workflow: str, jobs: Sequence[PlannedJob], host: PlannedJob, run: Sequence[str], preset: Mapping[str, str]):
    """A group job for a resume or redo: only the members in `run` run as steps again; every other member keeps
    the outcome it had (`preset`: "ok", "failed" or "none"), so the edges inside and the job's exit status see it."""
    by_name = {j.name: j for j in jobs}
    name = host.name[: -len(HOST_SUFFIX)] if host.name.endswith(HOST_SUFFIX) else host.name
    g = GroupPlan(name, list(host.members), "run again", host.members[0], outcome_member(jobs, host), None, "")
    job = replace(host, members=tuple(m for m in host.members if m in set(run)))
    job.script = host_script(workflow, g, job, [by_name[m] for m in host.members], preset)
    render.check_script(host.name, job.script, dict(render.sbatch_options(job)), "written for the group")
    return job


def host_script(
    workflow: str,
    g: GroupPlan,
    job: PlannedJob,
    members: Sequence[PlannedJob],
    preset: Mapping[str, str] | None = None,
) -> str:
    """The group job's batch script: each member, in run order, as `srun --job-name=<member>` when its edges hold.

    A member's step runs its own compiled script with `bash -c` (`sh -c` for a POSIX `script:`); `--overlap` lets
    an `srun` inside the member start its own steps in the allocation (measured on 22.05: without it such an inner
    srun waits forever). Each member's state is `ok`, `failed` (its step ended non-zero) or `none` (not run)."""
    options = render.sbatch_options(job)
    index = {m.name: i for i, m in enumerate(members)}
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH {d}" for d in render.directive_lines(options)]
    lines += [
        "#",
        f"# slurmdag workflow: {workflow}",
        f"# group: {g.name} ({g.why}); members: {', '.join(g.members)}",
        "# Each member runs as its own job step named after it, once its edges hold (docs/semantics.md, Groups).",
        "set -u",
        "",
    ]
    for i, m in enumerate(members):
        if preset is not None and m.name in preset:
            lines += [f"_sd_{i}={preset[m.name]}  # {m.name}: not run again (its outcome of an earlier attempt)", ""]
            continue
        shell = "sh" if shell_kind(m.script.split("\n", 1)[0]) == "sh" else "bash"
        end = _delimiter(m.script, i)
        lines.append(f"IFS= read -r -d '' _sd_code_{i} <<'{end}' || true")
        lines.append(m.script.rstrip("\n"))  # its location line is bound at submit like any (bind_location)
        lines.append(end)
        step = ["srun", f"--job-name={m.name}", "--nodes=1", "--ntasks=1", "--overlap"]
        if m.walltime:
            step.append(f"--time={format_walltime(m.walltime)}")
        lines += [
            f"if {_condition(m, index)}; then",
            f'  if {" ".join(step)} {shell} -c "$_sd_code_{i}"; then _sd_{i}=ok; else _sd_{i}=failed; fi',
            "else",
            f"  _sd_{i}=none",
            "fi",
            f"unset _sd_code_{i}",
            "",
        ]
    if g.outcome is not None:
        lines.append(f'[ "$_sd_{index[g.outcome]}" = ok ]  # the outcome children outside see: {g.outcome}')
    else:
        failed = " || ".join(f'[ "$_sd_{i}" = failed ]' for i in range(len(members)))
        lines.append(f"! {{ {failed}; }}  # the group job fails when a member failed")
    return "\n".join(lines) + "\n"
