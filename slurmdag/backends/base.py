"""What slurmdag asks of Slurm, as one small interface. `cli.CliBackend` drives the Slurm commands; another
backend (pyslurm) can implement the same methods. Nothing above `backends/` talks to Slurm any other way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from slurmdag.backends.cluster_info import ClusterInfo, JobTable
from slurmdag.model.errors import AccountingUnavailableError
from slurmdag.model.sbatch_options import ParsedOption


@dataclass(frozen=True)
class JobInfo:
    """One job or one array task as Slurm reports it. Keyed by `job_id`: "123" or "123_4" (never a raw task id)."""

    job_id: str
    array_job_id: str  # the id the job was submitted as (== job_id for a plain job)
    array_task: int | None  # task index for an array task, else None
    name: str
    state: str  # Slurm base state, upper case, without " by <uid>": PENDING, RUNNING, COMPLETED, CANCELLED, ...
    reason: str | None = None  # squeue's pending/exit reason (None when Slurm says "None")
    exit_code: int | None = None  # from sacct; None while unknown
    signal: int | None = None  # signal that ended the job, if any
    elapsed: str | None = None
    start: str | None = None  # ISO time or None if it never started
    end: str | None = None
    node_list: str | None = None  # None when no node was ever assigned (the job never ran)
    source: str = "squeue"  # where state came from: "squeue" (live) or "sacct" (accounting)
    # A job step's row (only when asked for, see Backend.query): its step id ("0", "1", ..., or "batch"); `job_id`
    # is then "<job id>.<step>", `array_job_id` the job's id and `name` the step's name.
    step: str | None = None

    @property
    def ran(self) -> bool:
        """True if the job was ever given nodes (sacct's Start is not a reliable sign, see slurm-facts §6)."""
        return self.node_list is not None


class Backend(ABC):
    @abstractmethod
    def submit(self, script: str, options: list[str], directives: Sequence[ParsedOption] | None = None) -> str:
        """Submit a batch script (path of a file) with sbatch options; return the job id. `directives`: the
        script's #SBATCH block as the caller read it when it wrote the file (None: read from the file when needed;
        sbatch reads the file itself in any case)."""

    @abstractmethod
    def query(self, job_ids: Iterable[str], since: datetime | None = None, steps: bool = False) -> dict[str, JobInfo]:
        """State of the given jobs, live and finished, in one call per source. Array ids expand to their tasks.
        `steps`: the same accounting call also returns the jobs' numbered steps (and `batch` steps), keyed
        `<job id>.<step id>` (what status reads for the members of a group)."""

    def query_or_live(
        self, job_ids: Iterable[str], since: datetime | None = None, steps: bool = False
    ) -> tuple[dict[str, JobInfo], AccountingUnavailableError | None]:
        """`query`; when accounting (slurmdbd) does not answer, what slurmctld alone holds, and why accounting is
        missing. A job slurmctld no longer holds is then absent from the answer: its outcome is Unknown, never
        guessed. slurmctld not answering still raises."""
        ids = list(job_ids)
        try:
            return (self.query(ids, since, steps=True) if steps else self.query(ids, since)), None
        except AccountingUnavailableError as ex:
            return self.query_live(ids), ex

    def query_live(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """Only what slurmctld holds (fresh, no accounting lag); by default the full query."""
        return self.query(job_ids)

    @abstractmethod
    def hold(self, job_ids: Iterable[str]) -> list[str]:
        """Hold pending jobs; return Slurm's complaints (e.g. jobs that already started) instead of raising."""

    @abstractmethod
    def release(self, job_ids: Iterable[str]) -> None: ...

    @abstractmethod
    def cancel(self, job_ids: Iterable[str]) -> None:
        """Ask Slurm to cancel; Slurm's exit status proves nothing (slurm-facts §2 #31): read state back."""

    @abstractmethod
    def update_dependency(self, job_id: str, expression: str) -> None: ...

    @abstractmethod
    def find_jobs(
        self, name_prefix: str, since: datetime | None = None, include_accounting: bool = True
    ) -> dict[str, JobInfo]:
        """Every job of this user whose name starts with `name_prefix`: live ones, and (unless
        include_accounting=False) finished ones in accounting since `since`. Used to rebuild a lost record."""

    def read_job_table(self) -> JobTable | None:
        """slurmctld's job table alone (waiting for room in it re-reads only this); by default the full read."""
        return self.read_cluster().job_table

    @abstractmethod
    def read_cluster(self) -> ClusterInfo:
        """What pre-flight checks a DAG against, read once: config, partitions, nodes, the user's unfinished jobs,
        the options sbatch knows, and the accounting limits. Config, partitions and nodes are required (raise if
        unreadable); the rest is best effort (left empty/None, with a note saying what could not be read)."""

    def sbatch_options(self) -> set[str] | None:
        """The long options this machine's `sbatch --help` lists (newer Slurm's and site plugins' included), read
        without the controller; None when there is no sbatch to ask (validate on a laptop)."""
        return None

    @abstractmethod
    def job_comments(self, job_ids: Iterable[str], since: datetime) -> dict[str, str]:
        """The comment each job carries (a retrying allocation's batch script notes its attempts there), from
        accounting and, fresher, from slurmctld. Keyed like `query`; jobs without a comment are left out."""
