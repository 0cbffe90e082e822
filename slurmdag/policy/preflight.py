"""Pre-flight: check a Plan against the live cluster before anything is submitted, so a DAG never stops half-way on
a cluster limit.

`read_cluster` asks Slurm once (through backends.runner): `scontrol show config`, `scontrol show partition -o`,
`scontrol show node -o`, the user's associations and the QOS limits from `sacctmgr`, the user's queued jobs
(`squeue --me`) and `sbatch --help` (which lists options added by SPANK plugins). Everything after that is pure:
`check(plan, cluster)` returns a Verdict: the plan to submit (task groups split for MaxArraySize), problems that
refuse the DAG, and notes.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from slurmdag.backends import runner
from slurmdag.compiler.array_split import split_plan
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import PreflightError, Problem, SlurmCommandError
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.sbatch_options import resolve_long

# --- what was read ---


@dataclass
class Partition:
    name: str
    nodes: list[str]
    default: bool = False
    state: str = "UP"
    max_nodes: int | None = None
    max_time: int | None = None  # seconds


@dataclass
class Node:
    name: str
    cpus: int
    memory_mb: int
    partitions: list[str]
    gres: str = ""
    features: list[str] = field(default_factory=list)


@dataclass
class SubmitLimit:
    value: int
    what: str  # e.g. "MaxSubmitJobs of association root/slurmdag", "MaxSubmitJobsPerUser of QOS normal"
    in_use: int = 0  # the user's jobs (array tasks counted one by one) already counted against it
    qos: str | None = None  # the limit applies to jobs of this QOS only (None: to all jobs of the association)


@dataclass
class ClusterInfo:
    config: dict[str, str]
    partitions: dict[str, Partition]
    nodes: list[Node]
    submit_limits: list[SubmitLimit] = field(default_factory=list)
    queued: int = 0  # the user's unfinished jobs (array tasks one by one)
    sbatch_options: set[str] | None = None  # long options `sbatch --help` lists (None: unknown)
    notes: list[str] = field(default_factory=list)  # what could not be read

    def max_array_size(self) -> int | None:
        return _int(self.config.get("MaxArraySize"))

    def max_job_count(self) -> int | None:
        return _int(self.config.get("MaxJobCount"))

    def default_partition(self) -> str | None:
        return next((p.name for p in self.partitions.values() if p.default), None)


@dataclass
class Verdict:
    plan: Plan
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    jobs_needed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = "pre-flight: OK" if self.ok else f"pre-flight: REFUSED ({len(self.problems)} problem(s))"
        return [head] + [f"  {n}" for n in self.notes] + [f"  problem: {p.message}" for p in self.problems]


# --- parsing (pure) ---


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.match(r"^\s*(\d+)", text)
    return int(m.group(1)) if m else None


def parse_config(text: str) -> dict[str, str]:
    """`scontrol show config`: "Key = Value" lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_oneliners(text: str) -> list[dict[str, str]]:
    """`scontrol show ... -o`: one record per line of Key=Value words."""
    out = []
    for line in text.splitlines():
        rec = {}
        for word in line.split():
            key, sep, value = word.partition("=")
            if sep:
                rec[key] = value
        if rec:
            out.append(rec)
    return out


def expand_hostlist(text: str) -> list[str]:
    """ "node[1-3,5],gpu01" -> ["node1", "node2", "node3", "node5", "gpu01"]."""
    if not text or text == "(null)":
        return []
    out = []
    for m in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?", text):
        prefix, ranges = m.group(1), m.group(2)
        if ranges is None:
            out.append(prefix)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            width = len(lo)
            for i in range(int(lo), int(hi or lo) + 1):
                out.append(f"{prefix}{i:0{width}d}")
    return out


def _slurm_time(text: str | None) -> int | None:
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A"):
        return None
    try:
        return wt.parse_walltime(text)
    except ValueError:
        return None


def parse_partitions(text: str) -> dict[str, Partition]:
    out = {}
    for rec in parse_oneliners(text):
        name = rec.get("PartitionName")
        if not name:
            continue
        out[name] = Partition(
            name,
            expand_hostlist(rec.get("Nodes", "")),
            rec.get("Default") == "YES",
            rec.get("State", "UP"),
            _int(rec.get("MaxNodes")),
            _slurm_time(rec.get("MaxTime")),
        )
    return out


def parse_nodes(text: str) -> list[Node]:
    out = []
    for rec in parse_oneliners(text):
        if "NodeName" not in rec:
            continue
        feats = rec.get("AvailableFeatures", "")
        out.append(
            Node(
                rec["NodeName"],
                _int(rec.get("CPUTot")) or 0,
                _int(rec.get("RealMemory")) or 0,
                [p for p in rec.get("Partitions", "").split(",") if p],
                "" if rec.get("Gres") in (None, "(null)") else rec["Gres"],
                [] if feats in ("", "(null)") else feats.split(","),
            )
        )
    return out


def parse_sbatch_help(text: str) -> set[str]:
    return set(re.findall(r"--([A-Za-z][A-Za-z0-9-]*)", text))


# --- reading (I/O, once per submit) ---

ASSOC_FORMAT = "Account,Partition,MaxSubmitJobs,GrpSubmitJobs,QOS"
QOS_FORMAT = "Name,MaxSubmitPU,GrpSubmit"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid: sacctmgr wants one
        return str(os.getuid())


def read_cluster(plan: Plan | None = None) -> ClusterInfo:
    """One read of what pre-flight needs. Config/partitions/nodes are required; accounting limits are best effort."""
    user = _user()
    commands = {
        "config": ["scontrol", "show", "config"],
        "partitions": ["scontrol", "show", "partition", "-o"],
        "nodes": ["scontrol", "show", "node", "-o"],
        "queue": ["squeue", "--me", "-h", "-r", "-t", "PD,R,CF,CG,S,RQ,RS,SO", "-o", "%i|%q|%a"],
        "sbatch_help": ["sbatch", "--help"],
        "default_account": ["sacctmgr", "-n", "-P", "show", "user", user, "format=DefaultAccount"],
        "assocs": ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", f"format={ASSOC_FORMAT}"],
        "qos": ["sacctmgr", "-n", "-P", "show", "qos", f"format={QOS_FORMAT}"],
    }
    # The reads are independent: run them at once, so pre-flight costs the slowest one, not the sum of eight.
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        pending = {key: pool.submit(runner.run_slurm, argv) for key, argv in commands.items()}

    def out(key: str) -> str:
        return pending[key].result().stdout  # re-raises that command's SlurmCommandError

    info = ClusterInfo(
        config=parse_config(out("config")),
        partitions=parse_partitions(out("partitions")),
        nodes=parse_nodes(out("nodes")),
    )
    rows = [ln.split("|") for ln in out("queue").splitlines() if ln.strip()]
    info.queued = len(rows)
    try:
        info.sbatch_options = parse_sbatch_help(out("sbatch_help"))
    except SlurmCommandError:
        info.notes.append("could not read `sbatch --help`: plugin options not checked")
    try:
        default_account, assocs, qos = out("default_account").strip(), out("assocs"), out("qos")
    except SlurmCommandError as ex:
        info.notes.append(f"could not read accounting limits ({ex}); submit limits not checked")
    else:
        accounts = {j.options.get("account") for j in (plan.jobs if plan else [])} - {None}
        qos_used = {j.options.get("qos") for j in (plan.jobs if plan else [])} - {None}
        info.submit_limits = submit_limits(
            user, default_account.splitlines()[0] if default_account else "", accounts, qos_used, assocs, qos, rows
        )
    return info


def submit_limits(
    user: str,
    default_account: str,
    accounts: set,
    qos_used: set,
    assoc_text: str,
    qos_text: str,
    queue_rows: list[list[str]],
) -> list[SubmitLimit]:
    """Pure: the submit limits that apply to this DAG's jobs, with how much of each the user already uses."""
    limits = []
    wanted = accounts or {default_account}
    default_qos: set[str] = set()
    for line in assoc_text.splitlines():
        f = line.split("|")
        if len(f) < 5 or f[0] not in wanted or f[1]:  # per-partition associations: not handled, see docs
            continue
        default_qos.update(q for q in f[4].split(",") if q)
        for col, label in ((2, "MaxSubmitJobs"), (3, "GrpSubmitJobs")):
            if f[col].isdigit():
                used = sum(1 for r in queue_rows if len(r) > 2 and (r[2] == f[0] or not r[2]))
                limits.append(SubmitLimit(int(f[col]), f"{label} of association {user}/{f[0]}", used))
    for line in qos_text.splitlines():
        f = line.split("|")
        if len(f) < 3 or f[0] not in (qos_used or {"normal"}):
            continue
        for col, label in ((1, "MaxSubmitJobsPerUser"), (2, "GrpSubmitJobs")):
            if f[col].isdigit():
                used = sum(1 for r in queue_rows if len(r) > 1 and r[1] == f[0])
                limits.append(SubmitLimit(int(f[col]), f"{label} of QOS {f[0]}", used, qos=f[0]))
    return limits


# --- checking (pure) ---


def job_count(plan: Plan) -> int:
    """Jobs this DAG puts in the queue as Slurm counts them for submit limits: each array task, and the gate."""
    return 1 + sum(j.tasks or 1 for j in plan.jobs)


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
    needed = job_count(plan)
    verdict.jobs_needed = needed
    verdict.notes.append(f"the DAG puts {needed} jobs in the queue (array tasks counted one by one, with the gate)")
    for limit in cluster.submit_limits:
        count = (
            needed
            if limit.qos is None
            else 1 + sum(j.tasks or 1 for j in plan.jobs if j.options.get("qos") == limit.qos)
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
    total = cluster.max_job_count()
    if total is not None and needed > total:
        verdict.problems.append(
            Problem(
                f"the DAG needs {needed} jobs but the cluster's MaxJobCount is {total}: {needed - total} too many", file
            )
        )
    for job in plan.jobs:
        if job.kind != "part":
            verdict.problems += _resource_problems(job, cluster, file)
    return verdict


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
        mem = _mb(o["mem"])
    elif o.get("mem-per-cpu"):
        per = _mb(o["mem-per-cpu"])
        mem = per * cpus if per is not None else None
    return nodes, cpus, mem


def _mb(text: str | None) -> int | None:
    m = re.fullmatch(r"(\d+)([KMGT]?)B?", str(text or "").upper())
    if not m:
        return None
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return math.ceil(int(m.group(1)) * factor)


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
        time = _slurm_time(job.options.get("time"))
        if part.max_time is not None and time is not None and time > part.max_time:
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


def raise_if_refused(verdict: Verdict) -> None:
    if verdict.problems:
        raise PreflightError(verdict.problems)
