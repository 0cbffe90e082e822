"""Pre-flight: check a Plan against the live cluster before anything is submitted, so a DAG never stops half-way on
a cluster limit.

The backend reads the cluster once (`Backend.read_cluster`: config, partitions, nodes, the user's queued jobs, the
options sbatch knows and the accounting limits). Everything here is pure over that `ClusterInfo`:
`check(plan, cluster)` returns a Verdict: the plan to submit (task groups split for MaxArraySize), problems that
refuse the DAG, and notes.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta

from slurmdag.backends.cluster_info import ClusterInfo, JobTable, Node
from slurmdag.compiler.array_split import split_plan
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import Problem
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.sbatch_options import resolve_long


@dataclass
class SubmitLimit:
    value: int
    what: str  # e.g. "MaxSubmitJobs of association root/slurmdag", "MaxSubmitJobsPerUser of QOS normal"
    in_use: int = 0  # the user's jobs (array tasks counted one by one) already counted against it
    qos: str | None = None  # the limit applies to jobs of this QOS only (None: to all jobs of the association)


@dataclass
class Verdict:
    plan: Plan
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    jobs_needed: int = 0
    # Slurm's job table has no room for the DAG now: seconds until it will (submit waits that long, up to
    # JOB_TABLE_WAIT), or `no_room` saying why it cannot wait for it (a runtime condition, not a problem of the DAG).
    wait_for_room: float = 0.0
    no_room: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        if not self.ok:
            head = f"pre-flight: REFUSED ({len(self.problems)} problem(s))"
        elif self.no_room:
            head = "pre-flight: NO ROOM NOW (Slurm's job table is full)"
        else:
            head = "pre-flight: OK" + (
                f" (after waiting about {self.wait_for_room:.0f} s)" if self.wait_for_room else ""
            )
        return [head] + [f"  {n}" for n in self.notes] + [f"  problem: {p.message}" for p in self.problems]


# How long `submit` waits for room in Slurm's job table (MaxJobCount), before it starts and while sbatch is told
# "Slurm temporarily unable to accept job": finished jobs leave the table MinJobAge seconds after they end (300 s by
# default) when slurmctld next purges, so 360 s covers a table that is full of jobs that just ended.
JOB_TABLE_WAIT = float(os.environ.get("SLURMDAG_JOB_TABLE_WAIT", "360"))


@dataclass(frozen=True)
class Room:
    """Room in slurmctld's job table for `needed` more jobs."""

    free: int  # jobs that fit now
    fits: bool  # the DAG fits now
    # seconds until enough finished jobs are due to leave (0 when they are overdue: slurmctld purges in passes);
    # None: purging finished jobs alone never makes enough room
    wait: float | None


def job_table_room(needed: int, table: JobTable, max_job_count: int, min_job_age: int) -> Room:
    """Pure. slurmctld refuses a job that would bring its table to MaxJobCount, so `MaxJobCount - 1` jobs fit; a
    finished job leaves the table MinJobAge seconds after it ended."""
    free = max(max_job_count - 1 - table.held, 0)
    if needed <= free:
        return Room(free, True, 0.0)
    short = needed - free
    if short > len(table.finished_ends):
        return Room(free, False, None)
    leaves = table.finished_ends[short - 1] + timedelta(seconds=min_job_age)
    return Room(free, False, max((leaves - table.read_at).total_seconds(), 0.0))


def _check_job_table(verdict: Verdict, cluster: ClusterInfo, needed: int, file: str) -> None:
    total = cluster.max_job_count()
    if total is None:
        return
    if needed > total - 1:
        verdict.problems.append(
            Problem(
                f"the DAG needs {needed} jobs but the cluster's MaxJobCount is {total} (at most {total - 1} jobs fit "
                f"in slurmctld's table, even an empty one): {needed - total + 1} too many",
                file,
                hint="use task groups with fewer tasks, or split the workflow",
            )
        )
        return
    table, age = cluster.job_table, cluster.min_job_age()
    if table is None or age is None:
        return
    room = job_table_room(needed, table, total, age)
    finished = len(table.finished_ends)
    verdict.notes.append(
        f"Slurm's job table holds {table.held} of MaxJobCount {total} jobs ({finished} finished, which leave it "
        f"MinJobAge {age} s after they end): room for {room.free}, the DAG needs {needed}"
    )
    if room.fits:
        return
    if room.wait is None:
        verdict.no_room = (
            f"Slurm's job table has room for {room.free} more jobs (it holds {table.held} of MaxJobCount {total}) "
            f"and this DAG needs {needed}; only {finished} of the jobs in it have finished, so room frees up only "
            "as running and pending jobs end: try again later"
        )
        return
    when = (table.read_at + timedelta(seconds=room.wait)).strftime("%H:%M:%S")
    if room.wait > JOB_TABLE_WAIT:
        verdict.no_room = (
            f"Slurm's job table has room for {room.free} more jobs (it holds {table.held} of MaxJobCount {total}) "
            f"and this DAG needs {needed}: room frees up in about {room.wait:.0f} s (around {when}), as finished "
            f"jobs leave it; submit waits at most {JOB_TABLE_WAIT:.0f} s (SLURMDAG_JOB_TABLE_WAIT): try again then"
        )
        return
    verdict.wait_for_room = max(room.wait, 1.0)
    verdict.notes.append(
        f"no room for the DAG yet: finished jobs leave the table in about {room.wait:.0f} s (around {when}); "
        f"submit waits for them (at most {JOB_TABLE_WAIT:.0f} s)"
    )


# --- which submit limits apply (pure) ---


def submit_limits(cluster: ClusterInfo, plan: Plan) -> list[SubmitLimit]:
    """The submit limits that apply to this DAG's jobs, with how much of each the user already uses."""
    accounting = cluster.accounting
    if accounting is None:
        return []
    accounts = {j.options.get("account") for j in plan.jobs} - {None}
    qos_used = {j.options.get("qos") for j in plan.jobs} - {None}
    limits = []
    wanted = accounts or {accounting.default_account}
    for assoc in accounting.associations:
        if assoc.account not in wanted or assoc.partition:  # per-partition associations: not handled, see docs
            continue
        for value, label in ((assoc.max_submit_jobs, "MaxSubmitJobs"), (assoc.grp_submit_jobs, "GrpSubmitJobs")):
            if value is not None:
                used = sum(1 for q in cluster.queued if q.account == assoc.account or not q.account)
                limits.append(SubmitLimit(value, f"{label} of association {cluster.user}/{assoc.account}", used))
    for qos in accounting.qos:
        if qos.name not in (qos_used or {"normal"}):
            continue
        for value, label in (
            (qos.max_submit_jobs_per_user, "MaxSubmitJobsPerUser"),
            (qos.grp_submit_jobs, "GrpSubmitJobs"),
        ):
            if value is not None:
                used = sum(1 for q in cluster.queued if q.qos == qos.name)
                limits.append(SubmitLimit(value, f"{label} of QOS {qos.name}", used, qos=qos.name))
    return limits


# --- checking (pure) ---


def job_count(plan: Plan) -> int:
    """Jobs this DAG puts in the queue as Slurm counts them for submit limits: each array task, and the gate.
    Counted after packing (auto_array): an allocation packed into an array job is one of its tasks, not a job. A group
    is one job, however many allocations it runs (hosted allocations are not submitted)."""
    return 1 + sum(j.tasks or 1 for j in plan.submissions())


def check(plan: Plan, cluster: ClusterInfo) -> Verdict:
    file = plan.source or plan.workflow
    verdict = Verdict(plan, notes=list(cluster.notes))
    size = cluster.max_array_size()
    if size is not None:
        split, problems, notes = split_plan(plan, size)
        verdict.plan = split
        verdict.problems += problems
        verdict.notes += notes
    plan = verdict.plan
    if size is not None:
        verdict.problems += _oversized_packs(plan, size, file)
    needed = job_count(plan)
    verdict.jobs_needed = needed
    verdict.notes.append(f"the DAG puts {needed} jobs in the queue (array tasks counted one by one, with the gate)")
    for limit in submit_limits(cluster, plan):
        count = (
            needed
            if limit.qos is None
            else 1 + sum(j.tasks or 1 for j in plan.submissions() if j.options.get("qos") == limit.qos)
        )
        room = limit.value - limit.in_use
        if count > room:
            verdict.problems.append(
                Problem(
                    f"the DAG needs {count} job slots but {limit.what} is {limit.value} and {limit.in_use} of "
                    f"your jobs "
                    f"are already queued, leaving {max(room, 0)}: {count - max(room, 0)} too many",
                    file,
                    hint="wait for your queued jobs to finish, use task groups with fewer tasks, or split the workflow",
                )
            )
        else:
            verdict.notes.append(
                f"{limit.what} = {limit.value}: {limit.in_use} queued + {count} = {limit.in_use + count}, fits"
            )
    _check_job_table(verdict, cluster, needed, file)
    for job in plan.submissions():
        if job.kind != "part":
            verdict.problems += _resource_problems(job, cluster, file)
    return verdict


def _oversized_packs(plan: Plan, size: int, file: str) -> list[Problem]:
    """A packed array (auto_array) holds up to packing.MAX_PACK tasks; a cluster whose MaxArraySize is smaller
    refuses it. Not split like a task group: refused before anything is submitted, saying what to do."""
    return [
        Problem(
            f"auto_array packed {j.tasks} allocations into array job {j.name!r}, more than the cluster's "
            f"MaxArraySize={size} allows",
            file,
            hint="set `auto_array: false` in the workflow, or give some of these siblings different options",
        )
        for j in plan.jobs
        if j.kind == "host" and j.array and (j.tasks or 0) >= size
    ]


def _per_node(job: PlannedJob) -> tuple[int, int, int | None]:
    """(nodes, CPUs per node, MB per node or None) an allocation asks for."""
    o = job.options
    nodes = int(str(o.get("nodes") or "1").split("-")[0]) if str(o.get("nodes") or "1").split("-")[0].isdigit() else 1
    cpt = int(str(o.get("cpus-per-task") or 1)) if str(o.get("cpus-per-task") or "1").isdigit() else 1
    if o.get("ntasks-per-node") and str(o["ntasks-per-node"]).isdigit():
        tasks_per_node = int(str(o["ntasks-per-node"]))
    elif o.get("ntasks") and str(o["ntasks"]).isdigit():
        tasks_per_node = math.ceil(int(str(o["ntasks"])) / nodes)
    else:
        tasks_per_node = 1
    cpus = tasks_per_node * cpt
    mem = None
    if o.get("mem"):
        mem = wt.memory_mb(o["mem"])
    elif o.get("mem-per-cpu"):
        per = wt.memory_mb(o["mem-per-cpu"])
        mem = per * cpus if per is not None else None
    return nodes, cpus, mem


def _resource_problems(job: PlannedJob, cluster: ClusterInfo, file: str) -> list[Problem]:
    problems = []
    where = f"allocation {job.name!r}" if job.kind == "allocation" else f"job {job.name!r}"
    names = (job.options.get("partition") or "").split(",") if job.options.get("partition") else []
    if not names:
        default = cluster.default_partition()
        if default is None:
            problems.append(
                Problem(
                    f"{where} names no partition and the cluster has no default partition",
                    file,
                    hint=f"set `partition:`; partitions: {', '.join(cluster.partitions) or 'none'}",
                )
            )
            return problems
        names = [default]
    nodes_needed, cpus, mem = _per_node(job)
    fits_somewhere = False
    reasons = []
    for name in names:
        part = cluster.partitions.get(name)
        if part is None:
            problems.append(
                Problem(
                    f"{where}: partition {name!r} does not exist on this cluster",
                    file,
                    hint=f"partitions: {', '.join(sorted(cluster.partitions)) or 'none'}",
                )
            )
            continue
        members = [n for n in cluster.nodes if n.name in part.nodes or name in n.partitions]
        fitting = [
            n
            for n in members
            if n.cpus >= cpus and (mem is None or n.memory_mb >= mem) and _gres_fits(job, n) and _features_fit(job, n)
        ]
        time = job.walltime
        if part.max_time is not None and time is not None and wt.walltime_exceeds(time, part.max_time):
            reasons.append(
                f"its walltime {wt.format_walltime(time)} exceeds partition {name!r}'s MaxTime "
                f"{wt.format_walltime(part.max_time)}"
            )
        elif part.max_nodes is not None and nodes_needed > part.max_nodes:
            reasons.append(f"it asks for {nodes_needed} nodes, partition {name!r} allows {part.max_nodes} per job")
        elif len(fitting) < nodes_needed:
            best = max(members, key=lambda n: (n.cpus, n.memory_mb), default=None)
            have = f"largest node {best.name}: {best.cpus} CPUs, {best.memory_mb} MB" if best else "no nodes"
            reasons.append(
                f"it asks for {nodes_needed} node(s) with {cpus} CPUs"
                + (f" and {mem} MB" if mem is not None else "")
                + f" each; partition {name!r} has {len(fitting)} such node(s) ({have})"
            )
        else:
            fits_somewhere = True
    if not fits_somewhere and reasons:
        problems.append(
            Problem(
                f"{where} cannot run: " + "; ".join(reasons), file, hint="lower its request or choose another partition"
            )
        )
    if cluster.sbatch_options is not None:
        for opt in job.options:
            if resolve_long(opt) is None and opt not in cluster.sbatch_options:
                problems.append(
                    Problem(
                        f"{where} uses --{opt}, which this cluster's sbatch does not know (a site plugin that is not "
                        "installed here?)",
                        file,
                        hint=f"remove `{opt.replace('-', '_')}` or submit on a cluster that has it",
                    )
                )
    return problems


def _gres_fits(job: PlannedJob, node: Node) -> bool:
    gpus = job.options.get("gpus")
    gres = job.options.get("gres")
    if not gpus and not gres:
        return True
    if not node.gres:
        return False
    if gres:
        want = {g.split(":")[0] for g in str(gres).split(",")}
        have = {g.split(":")[0] for g in node.gres.split(",")}
        return want <= have
    return "gpu" in node.gres


def _features_fit(job: PlannedJob, node: Node) -> bool:
    c = job.options.get("constraint")
    if not c:
        return True
    words = [w for w in re.split(r"[&|,*\[\]()]", str(c)) if w and not w.isdigit()]
    if "|" in str(c):
        return any(w in node.features for w in words)
    return all(w in node.features for w in words)
