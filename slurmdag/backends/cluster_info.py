"""What pre-flight needs to know about a cluster, as typed data any backend can fill (`Backend.read_cluster`).

Only facts, no judgement: which limits apply to a DAG and whether it fits is `policy/preflight.py`'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Partition:
    name: str
    nodes: list[str]
    default: bool = False
    state: str = "UP"
    max_nodes: int | None = None
    max_time: int | None = None  # seconds; None: unlimited


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    partitions: list[str]
    gres: str = ""
    features: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Association:
    """One of the user's accounting associations."""

    account: str
    partition: str | None  # None: the association covers every partition
    max_submit_jobs: int | None  # MaxSubmitJobs (None: no limit)
    grp_submit_jobs: int | None  # GrpSubmitJobs
    qos: tuple[str, ...] = ()  # the QOS the association allows


@dataclass(frozen=True)
class QosLimits:
    name: str
    max_submit_jobs_per_user: int | None  # MaxSubmitPU
    grp_submit_jobs: int | None  # GrpSubmit


@dataclass(frozen=True)
class QueuedJob:
    """One of the user's unfinished jobs (an array task counts on its own, as Slurm counts it for submit limits)."""

    job_id: str
    qos: str
    account: str


@dataclass(frozen=True)
class JobTable:
    """slurmctld's job table as squeue shows it: every user's jobs, each array task on its own (MaxJobCount counts
    them so), finished ones too until slurmctld purges them, MinJobAge seconds after they end."""

    held: int  # jobs in the table now
    finished_ends: tuple[datetime, ...]  # when each finished job still in the table ended, oldest first
    read_at: datetime  # when it was read (aware)


@dataclass(frozen=True)
class Accounting:
    """What slurmdbd says limits the user's submissions."""

    default_account: str
    associations: list[Association]
    qos: list[QosLimits]


@dataclass
class ClusterInfo:
    user: str
    config: dict[str, str]  # `scontrol show config`: key -> value as Slurm prints it
    partitions: dict[str, Partition]
    nodes: list[Node]
    queued: list[QueuedJob] = field(default_factory=list)
    job_table: JobTable | None = None  # None: not read
    sbatch_options: set[str] | None = None  # long options sbatch knows, plugins' included (None: unknown)
    accounting: Accounting | None = None  # None: could not be read (see notes)
    notes: list[str] = field(default_factory=list)  # what could not be read

    def max_array_size(self) -> int | None:
        return leading_int(self.config.get("MaxArraySize"))

    def max_job_count(self) -> int | None:
        return leading_int(self.config.get("MaxJobCount"))

    def min_job_age(self) -> int | None:
        """Seconds a finished job stays in slurmctld's table ("300 sec")."""
        return leading_int(self.config.get("MinJobAge"))

    def default_partition(self) -> str | None:
        return next((p.name for p in self.partitions.values() if p.default), None)


def leading_int(text: str | None) -> int | None:
    """The number a Slurm value starts with ("300 sec" -> 300); None for none or "UNLIMITED"."""
    if text is None:
        return None
    m = re.match(r"^\s*(\d+)", text)
    return int(m.group(1)) if m else None
