"""The compiled form of a workflow: everything `submit` needs, before any Slurm job id exists.

A Plan is pure data. `compile` builds it from a validated spec; `submit` walks `jobs` in order (parents always come
before children), fills job ids into each dependency expression and calls sbatch; `store` keeps it as JSON;
`reconcile` and `status` read `edges` to label states (Skipped vs Cancelled) and to act where Slurm cannot.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from slurmdag.model.slurm_values import parse_time_option

# 2: the walltime is `walltime` (seconds), no longer a "time" option string; format 1 plans are read and converted.
# 3: one Slurm job may host several allocations (kind "host", `members`; an allocation's `host`): a group's members
#    run as job steps, a packed array's as array tasks. Plans of formats 1 and 2 (no hosts) read unchanged.
PLAN_FORMAT = 3

# Slurm dependency types slurmdag emits.
DependencyKind = Literal["afterok", "afternotok", "afterany", "aftercorr"]
# Edge conditions as a user writes them.
Condition = Literal["success", "failure", "any", "corresponding"]
# "part": more of a task group split for MaxArraySize; "host": one Slurm job running several allocations
JobKind = Literal["allocation", "join", "part", "host"]


@dataclass(frozen=True)
class DependencyTerm:
    kind: DependencyKind
    # name of another job of the same plan: a submitted job, or an allocation a packed array hosts as one task
    # (submit maps that name to `<array id>_<task>`); never a group member (a term names the group's host job)
    parent: str

    def render(self, job_ids: Mapping[str, str]) -> str:
        return f"{self.kind}:{job_ids[self.parent]}"


@dataclass(frozen=True)
class Dependency:
    """A Slurm dependency expression: terms joined by ',' (all must hold) or by '?' (any one), never both.

    Slurm 22.05 silently reads an expression that mixes ',' and '?' as all-OR (slurm-facts.md §2 #16), so the type
    makes a mixed expression unrepresentable: compile lowers AND-of-OR through a join job instead.
    """

    join: Literal["all", "any"]
    terms: tuple[DependencyTerm, ...]

    def render(self, job_ids: Mapping[str, str], extra: tuple[DependencyTerm, ...] = ()) -> str:
        """The `--dependency=` value with real job ids; `extra` terms (e.g. the submit gate) must keep it pure AND."""
        terms = self.terms + tuple(extra)
        if extra and self.join == "any" and len(terms) > 1:
            raise ValueError("cannot add AND terms to an OR dependency")
        sep = "," if self.join == "all" else "?"
        return sep.join(t.render(job_ids) for t in terms)

    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.parent for t in self.terms))


@dataclass(frozen=True)
class Edge:
    """A dependency as the user wrote it: kept for labelling states and for the reconciler."""

    parent: str  # allocation name
    condition: Condition
    group: Literal["all", "any"] = "all"  # from depends_on ("all") or depends_on_any ("any")


@dataclass(frozen=True)
class Hosting:
    """Where a hosted allocation runs: inside the plan job `job` (kind "host"), found in Slurm either as the job
    step named `step` (a group member: `srun --job-name=<step>`, sacct's `<job id>.<step id>` row of that name) or
    as array task `task` (a packed array: `<job id>_<task>`). Exactly one of `step` and `task` is set."""

    job: str
    step: str | None = None
    task: int | None = None

    def __post_init__(self) -> None:
        if (self.step is None) == (self.task is None):
            raise ValueError("a hosted allocation is found either by its step name or by its array task index")


@dataclass
class PlannedJob:
    """One sbatch submission: a user allocation (single job or array) or a generated join job."""

    name: str  # allocation name; join jobs get a name no user name can take (contains '+')
    kind: JobKind
    # sbatch long options without the leading "--", value None for a bare flag. Never contains the options
    # slurmdag owns (dependency, job-name, array, hold, parsable, kill-on-invalid-dep, wrap) nor `time`
    # (see `walltime`); a user's `comment` is here when the workflow or its script sets one.
    options: dict[str, str | None]
    script: str  # rendered batch script text (its #SBATCH block is render.sbatch_options of this job)
    array: str | None = None  # Slurm --array value, e.g. "0-7" or "0-99%20"; None for a single job
    tasks: int | None = None  # number of tasks of a task group; None for a single job
    dependency: Dependency | None = None  # None: a root (submit makes it wait on the DAG's gate)
    edges: tuple[Edge, ...] = ()  # the user's edges into this job (empty for join jobs)
    for_allocation: str | None = None  # join jobs: the allocation they serve
    retries: int = 0  # the workflow's `retries`: how often the reconciler may re-run a failed allocation
    # `script:` allocations: where each option came from, e.g. "--nodes=2  (script line 3)"; None otherwise
    option_sources: list[str] | None = None
    # A task group larger than the cluster's MaxArraySize is submitted as several arrays (preflight/array_split):
    # each further array is a job of kind "part" with `part_of` = the allocation and its tasks' logical indexes
    # shifted by `task_offset` from Slurm's.
    part_of: str | None = None
    task_offset: int = 0
    # The time limit in seconds (None: the partition's default; 0: no limit, slurm_values.UNLIMITED). Typed here
    # and turned into Slurm's `--time` text only by the renderer (compiler/render.py): nothing reads it back.
    walltime: int | None = None
    # A hosted allocation (kind "allocation") is not submitted on its own: `host` says which job runs it and how
    # Slurm shows it; its `dependency` is None (the host job carries the Slurm dependency), its `edges` stay the
    # user's. A host job (kind "host") lists the allocations it runs in `members` (a group: in the order its script
    # considers them; a packed array: by task index).
    host: Hosting | None = None
    members: tuple[str, ...] = ()
    # "stop": the job's failure cancels every other unfinished job of its DAG (`on_failure: stop`, done by the
    # job itself before it ends; docs/semantics.md). Absent from plan.json when "continue".
    on_failure: str = "continue"
    # The allocation's `outputs:` (docs/passing-data.md): names each of its jobs must publish; plan.json omits it
    # when empty, so plans without outputs read as before.
    outputs: list[str] = field(default_factory=list)
    # Host jobs: why these allocations share one Slurm job and how it is shaped, as `compile` prints it (for
    # people: not a stable format to parse). None on other jobs.
    why: list[str] | None = None
    # `stop_if:` as written: when it holds after the job succeeded, the job cancels the rest of its DAG, which then
    # ends Completed, "stopped early" (docs/semantics.md). Absent from plan.json when None.
    stop_if: str | None = None

    def parents(self) -> tuple[str, ...]:
        return self.dependency.parents() if self.dependency else ()

    @property
    def submitted(self) -> bool:
        """Whether this job is an sbatch submission of its own (a hosted allocation is not)."""
        return self.host is None


@dataclass
class Plan:
    workflow: str  # the workflow's `name`
    jobs: list[PlannedJob]  # topological order: every parent before its children
    params: dict[str, Any] = field(default_factory=dict)  # effective params after --set
    source: str | None = None  # path of the workflow file, if any
    format: int = PLAN_FORMAT
    max_concurrent: int | None = None  # the workflow's `max_concurrent` (a policy may lower it at submit)
    # `uses:` sub-workflows: using allocation's (prefixed) name -> {"file": included file, "members": [allocations]}
    subworkflows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def job(self, name: str) -> PlannedJob:
        for j in self.jobs:
            if j.name == name:
                return j
        raise KeyError(name)

    def allocations(self) -> list[PlannedJob]:
        """Every allocation, hosted or not (what status, cancel --allocation, resume and redo speak of)."""
        return [j for j in self.jobs if j.kind == "allocation"]

    def submissions(self) -> list[PlannedJob]:
        """The jobs sbatch submits, in order: everything but hosted allocations (their host job runs them)."""
        return [j for j in self.jobs if j.host is None]

    def members_of(self, host: str) -> list[PlannedJob]:
        """The allocations the host job `host` runs, in its `members` order."""
        return [self.job(name) for name in self.job(host).members]

    def slurm_job_of(self, name: str) -> str:
        """The plan job whose Slurm job runs `name`: its host for a hosted allocation, else itself."""
        job = self.job(name)
        return job.host.job if job.host is not None else name

    # --- JSON (the plan.json schema is documented in docs/plan-json.md) ---

    def to_dict(self) -> dict[str, Any]:
        """The plan as plan.json holds it: a copy, like dataclasses.asdict's, built field by field (asdict's generic
        deep copy took 0.03 s for 500 jobs, on every submit)."""
        data = {name: copy.deepcopy(getattr(self, name)) for name in _PLAN_FIELDS if name != "jobs"}
        data["jobs"] = [_job_dict(job) for job in self.jobs]
        for job in data["jobs"]:
            if job["option_sources"] is None:  # only `script:` allocations have it; keep other plans unchanged
                del job["option_sources"]
            if job["part_of"] is None:  # only split task groups have parts; keep other plans unchanged
                del job["part_of"], job["task_offset"]
            if job["host"] is None:  # only hosted allocations have a host
                del job["host"]
            else:
                job["host"] = {k: v for k, v in job["host"].items() if v is not None}
            if job["kind"] != "host":  # only host jobs have members
                del job["members"]
            if job["on_failure"] == "continue":  # the default: plans without `on_failure: stop` stay unchanged
                del job["on_failure"]
            if not job["outputs"]:
                del job["outputs"]
            if job["why"] is None:
                del job["why"]
            if job["stop_if"] is None:
                del job["stop_if"]
        if data["max_concurrent"] is None:
            del data["max_concurrent"]
        if not data["subworkflows"]:  # plans without `uses:` stay unchanged
            del data["subworkflows"]
        return data

    def to_json(self, compact: bool = False) -> str:
        """plan.json; `compact`: without indentation (json's C encoder, ~4x faster: the store's copy, written on
        every submit)."""
        if compact:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        jobs = []
        for j in data["jobs"]:
            if data.get("format", PLAN_FORMAT) < 2:
                j = _walltime_from_options(j)
            dep = j.get("dependency")
            jobs.append(
                PlannedJob(
                    name=j["name"],
                    kind=j["kind"],
                    options=dict(j["options"]),
                    script=j["script"],
                    array=j.get("array"),
                    tasks=j.get("tasks"),
                    dependency=None
                    if dep is None
                    else Dependency(dep["join"], tuple(DependencyTerm(**t) for t in dep["terms"])),
                    edges=tuple(Edge(**e) for e in j.get("edges", ())),
                    for_allocation=j.get("for_allocation"),
                    retries=j.get("retries", 0),
                    option_sources=j.get("option_sources"),
                    part_of=j.get("part_of"),
                    task_offset=j.get("task_offset", 0),
                    walltime=j.get("walltime"),
                    host=Hosting(**j["host"]) if j.get("host") is not None else None,
                    members=tuple(j.get("members", ())),
                    on_failure=j.get("on_failure", "continue"),
                    outputs=list(j.get("outputs", ())),
                    why=j.get("why"),
                    stop_if=j.get("stop_if"),
                )
            )
        return cls(
            workflow=data["workflow"],
            jobs=jobs,
            params=dict(data.get("params", {})),
            source=data.get("source"),
            format=PLAN_FORMAT,
            max_concurrent=data.get("max_concurrent"),
            subworkflows={k: dict(v) for k, v in data.get("subworkflows", {}).items()},
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


def _walltime_from_options(job: Mapping[str, Any]) -> Mapping[str, Any]:
    """A format-1 job (a DAG stored before the walltime was typed): its "time" option becomes `walltime`."""
    options = dict(job["options"])
    text = options.pop("time", None)
    if text is None:
        return job
    try:
        seconds = parse_time_option(text)
    except ValueError:
        return job  # a form only Slurm reads (e.g. "1-30"): left an option, as it was submitted
    return {**job, "options": options, "walltime": seconds}


_PLAN_FIELDS = tuple(f.name for f in fields(Plan))
_JOB_FIELDS = tuple(f.name for f in fields(PlannedJob))


def _job_dict(job: PlannedJob) -> dict[str, Any]:
    """What asdict gives for a job (its fields hold strings, numbers, flat lists and dicts of them, and the small
    dataclasses below); tuples stay tuples, which JSON writes as lists."""
    data = {name: getattr(job, name) for name in _JOB_FIELDS}
    data["options"] = dict(job.options)
    for name in ("option_sources", "outputs", "why"):
        value = data[name]
        data[name] = None if value is None else list(value)
    data["dependency"] = None if job.dependency is None else asdict(job.dependency)
    data["edges"] = [asdict(e) for e in job.edges]
    data["host"] = None if job.host is None else asdict(job.host)
    return data
