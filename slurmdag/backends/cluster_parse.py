"""Parsers for what the CLI backend reads once per submit for pre-flight: `scontrol show config|partition|node`,
`sacctmgr show user|assoc|qos`, `squeue` (every user's jobs) and `sbatch --help`. Pure, tested against recorded
real output (tests/unit/data/preflight/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slurmdag.backends.cluster_info import (
    Accounting,
    Association,
    ClusterInfo,
    JobTable,
    Node,
    Partition,
    QosLimits,
    QueuedJob,
    leading_int,
)
from slurmdag.model import slurm_values
from slurmdag.model.errors import SlurmCommandError
from slurmdag.model.states import UNFINISHED_SLURM_STATES, slurm_finished

# Field lists are fixed here and used by the CLI backend: the parsers depend on their order.
ASSOC_FORMAT = "Account,Partition,MaxSubmitJobs,GrpSubmitJobs,QOS"
QOS_FORMAT = "Name,MaxSubmitPU,GrpSubmit"
# Every user's jobs in every state (one read serves the user's submit limits and the job table's occupancy).
QUEUE_FORMAT = "%i|%q|%a|%u|%T|%e"


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
            leading_int(rec.get("MaxNodes")),
            slurm_values.parse_slurm_time(rec.get("MaxTime")),
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
                leading_int(rec.get("CPUTot")) or 0,
                leading_int(rec.get("RealMemory")) or 0,
                [p for p in rec.get("Partitions", "").split(",") if p],
                "" if rec.get("Gres") in (None, "(null)") else rec["Gres"],
                [] if feats in ("", "(null)") else feats.split(","),
            )
        )
    return out


def parse_sbatch_help(text: str) -> set[str]:
    return set(re.findall(r"--([A-Za-z][A-Za-z0-9-]*)", text))


def _limit(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def parse_default_account(text: str) -> str:
    """`sacctmgr -n -P show user NAME format=DefaultAccount`: the first line ("" if the user has none)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else ""


def parse_associations(text: str) -> list[Association]:
    """`sacctmgr -n -P show assoc user=NAME format=ASSOC_FORMAT`."""
    out = []
    for line in text.splitlines():
        f = line.split("|")
        if len(f) < 5:
            continue
        out.append(Association(f[0], f[1] or None, _limit(f[2]), _limit(f[3]), tuple(q for q in f[4].split(",") if q)))
    return out


def parse_qos(text: str) -> list[QosLimits]:
    """`sacctmgr -n -P show qos format=QOS_FORMAT`."""
    out = []
    for line in text.splitlines():
        f = line.split("|")
        if len(f) < 3 or not f[0]:
            continue
        out.append(QosLimits(f[0], _limit(f[1]), _limit(f[2])))
    return out


def parse_queue(text: str, user: str | None = None) -> list[QueuedJob]:
    """`squeue -h -r -t all -o QUEUE_FORMAT`: `user`'s unfinished jobs, one per job or array task (what counts
    against submit limits). Rows of only the first three fields (an older `squeue --me` read) are all taken."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split("|")
        if len(f) >= 5 and ((user is not None and f[3] != user) or f[4] not in UNFINISHED_SLURM_STATES):
            continue
        out.append(QueuedJob(f[0], f[1] if len(f) > 1 else "", f[2] if len(f) > 2 else ""))
    return out


def parse_job_table(text: str, read_at: datetime) -> JobTable:
    """The same rows as slurmctld's table: how many, and when the finished ones ended (%e, local time)."""
    held = 0
    ends = []
    for line in text.splitlines():
        if not line.strip():
            continue
        held += 1
        f = line.split("|")
        if len(f) >= 6 and slurm_finished(f[4]):
            try:
                ends.append(datetime.fromisoformat(f[5].strip()).astimezone())
            except ValueError:
                pass  # "Unknown": when it leaves the table cannot be foreseen
    return JobTable(held, tuple(sorted(ends)), read_at)


def client_reads(user: str) -> dict[str, list[str]]:
    """The pre-flight reads that both backends take from client commands (no pyslurm call gives them): the local
    sbatch's options and the user's accounting limits."""
    return {
        "sbatch_help": ["sbatch", "--help"],
        "default_account": ["sacctmgr", "-n", "-P", "show", "user", user, "format=DefaultAccount"],
        "assocs": ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", f"format={ASSOC_FORMAT}"],
        "qos": ["sacctmgr", "-n", "-P", "show", "qos", f"format={QOS_FORMAT}"],
    }


def add_client_reads(info: ClusterInfo, read: Callable[[str, Callable[[str], Any]], Any]) -> None:
    """Put client_reads' answers into `info`; `read(key, parse)` re-raises that command's SlurmCommandError. Either
    may fail on a site (no accounting, an sbatch wrapper): pre-flight then notes what it could not check."""
    try:
        info.sbatch_options = read("sbatch_help", parse_sbatch_help)
    except SlurmCommandError:
        info.notes.append("could not read `sbatch --help`: plugin options not checked")
    try:
        info.accounting = Accounting(
            read("default_account", parse_default_account),
            read("assocs", parse_associations),
            read("qos", parse_qos),
        )
    except SlurmCommandError as ex:
        info.notes.append(f"could not read accounting limits ({ex}); submit limits not checked")
