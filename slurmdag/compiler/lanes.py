"""Per-DAG concurrency with no slurmdag process alive: `max_concurrent: K` lowered to native Slurm. Pure.

Mechanism ("dependency lanes", docs/policy.md has the measurements behind the choice):
* the DAG gets K lanes; each single allocation is put in one lane and waits `afterany` on the lane's previous
  job, so at most K of them run at once. `afterany` holds whatever the predecessor's outcome, and with
  --kill-on-invalid-dep every job ends (runs or is cancelled), so a lane never blocks for good;
* lanes are assigned by list scheduling over the plan's order, estimating each job's length by its walltime
  (unknown: equal lengths): a job goes to the lane expected to free up first;
* a task group gets the throttle %K (or its own, if lower) and takes all K lanes: it waits for every lane's
  last job, and every lane's next job waits for it;
* join jobs (`exit 0`, a second long) take no lane; a job whose dependency is an OR (`?`), which cannot be
  ANDed with a lane term, first gets a join job `<alloc>+any` that holds the OR.
"""

from __future__ import annotations

import dataclasses

from slurmdag.compiler import render
from slurmdag.model import slurm_values as wt
from slurmdag.model.plan import Dependency, DependencyTerm, Plan, PlannedJob

DEFAULT_ESTIMATE = 3600  # seconds, for a job without a walltime


def _estimate(job: PlannedJob) -> int:
    return job.walltime or DEFAULT_ESTIMATE  # None (partition default) and UNLIMITED (0) alike


def apply_max_concurrent(plan: Plan, k: int) -> Plan:
    """The plan with lane dependencies and throttles so that at most `k` of its jobs/tasks run at once."""
    if k < 1:
        raise ValueError("max_concurrent must be at least 1")
    tails: list[str | None] = [None] * k  # last job of each lane
    free_at = [0] * k  # estimated time each lane frees up
    finish: dict[str, int] = {}
    out: list[PlannedJob] = []
    for job in plan.jobs:
        if job.host is not None:  # runs inside its host job (a packed array's task), which took the lanes
            finish[job.name] = finish.get(job.host.job, 0)
            out.append(job)
            continue
        ready = max((finish.get(p, 0) for p in job.parents()), default=0)
        if job.host is not None:  # runs inside its host job, which has its lane
            finish[job.name] = finish.get(job.host.job, ready)
            out.append(job)
            continue
        if job.kind == "join":
            finish[job.name] = ready
            out.append(job)
            continue
        dep = job.dependency
        if dep is not None and dep.join == "any" and len(dep.terms) > 1:
            join = _or_join(plan, job, dep)
            out.append(join)
            dep = Dependency("all", (DependencyTerm("afterok", join.name),))
        terms = list(dep.terms) if dep else []
        if job.array:
            lanes = range(k)
            start = max([ready, *free_at])
            job = dataclasses.replace(job, array=wt.with_throttle(job.array, k))
            job.script = render.refreshed_script(job)
        else:
            lane = min(range(k), key=lambda i: (max(free_at[i], ready), i))
            lanes = range(lane, lane + 1)
            start = max(ready, free_at[lane])
        for i in lanes:
            tail = tails[i]
            # aftercorr waits task by task, not for the whole predecessor: it does not free the lane
            if tail is not None and not any(t.parent == tail and t.kind != "aftercorr" for t in terms):
                terms.append(DependencyTerm("afterany", tail))
        terms = list(dict.fromkeys(terms))
        end = start + _estimate(job) * (_waves(job, k) if job.array else 1)
        for i in lanes:
            tails[i] = job.name
            free_at[i] = end
        finish[job.name] = end
        out.append(dataclasses.replace(job, dependency=Dependency("all", tuple(terms)) if terms else None))
    return dataclasses.replace(plan, jobs=out)


def _waves(job: PlannedJob, k: int) -> int:
    return -(-(job.tasks or 1) // k)


def lanes_of(plan: Plan) -> dict[str, list[str]]:
    """For views and tests: lane tail -> the jobs that wait on it with `afterany` only because of a lane."""
    out: dict[str, list[str]] = {}
    for job in plan.jobs:
        for t in job.dependency.terms if job.dependency else ():
            if t.kind == "afterany" and t.parent not in {e.parent for e in job.edges}:
                out.setdefault(t.parent, []).append(job.name)
    return out


def _or_join(plan: Plan, job: PlannedJob, dep: Dependency) -> PlannedJob:
    from slurmdag.compiler.compile import join_job

    return join_job(plan.workflow, f"{job.name}+any", job.name, job.options, dep)
