"""The pyslurm backend: the same `Backend` as the CLI one, talking to slurmctld through libslurm in-process.

What goes through pyslurm: submitting (one RPC per job, no sbatch process), reading slurmctld's jobs (one
`Jobs.load()` per pass, however many ids), hold/release/cancel/dependency updates, and pre-flight's partitions, nodes,
queue and config. What stays on the CLI (inherited from `CliBackend`, through the runner): everything slurmdbd
answers (sacct, sacctmgr) and `sbatch --help`, and the submission of a job whose options pyslurm cannot express
exactly as sbatch would (`pyslurm_options.translate` says which and why; such a job goes through sbatch).

Only `choice.choose` creates this class, after a probe in a child process has imported pyslurm safely: `import pyslurm`
kills the interpreter when the Slurm config cannot be read. Every pyslurm call of slurmdag is in this module (and
the probe, `pyslurm_probe.py`, which runs in its own process).
"""

from __future__ import annotations

import functools
import os
import resource
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from slurmdag.backends import backoff, runner
from slurmdag.backends.base import JobInfo
from slurmdag.backends.cli import CliBackend, run_read, unique_ids, user_name
from slurmdag.backends.cluster_info import ClusterInfo, JobTable, Node, Partition, QueuedJob
from slurmdag.backends.cluster_parse import (
    add_client_reads,
    client_reads,
    expand_hostlist,
)
from slurmdag.backends.pyslurm_options import RLIMIT_NAMES, Submitter, propagated_rlimits, translate
from slurmdag.backends.pyslurm_probe import controller_config
from slurmdag.compiler.script_directives import read_script_file
from slurmdag.model.errors import (
    JobTableFullError,
    RateLimitedError,
    SlurmCommandError,
    SlurmOutputError,
    SlurmUnavailableError,
)
from slurmdag.model.sbatch_options import ParsedOption
from slurmdag.model.slurm_values import array_indexes
from slurmdag.model.states import UNFINISHED_SLURM_STATES, slurm_finished

T = TypeVar("T")

# What slurmctld answers a submission when its job table is full (MaxJobCount): sbatch sleeps and retries on these
# ("Slurm temporarily unable to accept job" / "Slurm job queue full"); pyslurm does not, so they become the error
# the CLI backend raises for sbatch's answer, and the submission waits for room the same way.
_TABLE_FULL = {11, 2007}  # EAGAIN, ESLURM_ERROR_ON_DESC_TO_RECORD_COPY
_INVALID_JOB_ID = 2017  # ESLURM_INVALID_JOB_ID
_ALREADY_DONE = 2021  # ESLURM_ALREADY_DONE


class PyslurmBackend(CliBackend):
    name = "pyslurm"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        import pyslurm  # safe here: choice.probe() imported it in a child process first

        self._ps = pyslurm
        self._nodes_unpinned = _leave_node_count_to_slurm()
        self._description = _sbatch_like_description(pyslurm)
        self._config = config  # the controller's config as the probe read it (None: read on first need)
        self._lock = threading.Lock()
        self._submitter: Submitter | None = None
        self._environ_copy: dict[str, str] | None = None
        self.sbatch_fallbacks: list[tuple[str, str]] = []  # (script, reason) of jobs submitted through sbatch

    # --- submitting ---

    def submit(self, script: str, options: list[str], directives: Sequence[ParsedOption] | None = None) -> str:
        reason = None
        if directives is None:  # not handed over by the writer of the script: read it as sbatch would
            try:
                # slurmdag's own scripts (the gate's --hold) hold options users may not write: no problem here
                read = read_script_file(script, owned_policy=False)
            except (OSError, UnicodeDecodeError):
                return super().submit(script, options)  # let sbatch say what is wrong with the file
            reason = "the script's #SBATCH lines are not what sbatch accepts" if read.problems else None
            directives = read.directives
        if reason is None:
            request = translate(script, options, directives, self._environ(), self._who())
            reason = request.sbatch_reason
        if reason is not None:
            self.sbatch_fallbacks.append((script, reason))
            return super().submit(script, options)
        argv = ["sbatch", "--parsable", *options, script]  # what the CLI would have run: named in errors
        try:
            desc = self._description(**request.fields)
            # pyslurm 22.5 sends `min_cpus_per_node` as the job's min_cpus: the CPU count sbatch computes.
            desc.min_cpus_per_node = request.min_cpus
            job_id = self._call(argv, desc.submit)
        except (ValueError, TypeError) as ex:  # pyslurm's own validation of a value
            raise SlurmCommandError(argv, 1, "", f"pyslurm: {ex}") from None
        return str(job_id)

    def _environ(self) -> dict[str, str]:
        """This process's environment, copied once per backend (a submission reads it for every job: os.environ
        decodes each variable on every read)."""
        if self._environ_copy is None:
            self._environ_copy = dict(os.environ)
        return self._environ_copy

    def _who(self) -> Submitter:
        """The submitting process as sbatch would describe it to the job (read once; the umask read is not
        thread-safe, and submit() runs in a few threads)."""
        with self._lock:
            if self._submitter is None:
                mask = os.umask(0)
                os.umask(mask)
                config = self._controller_config()
                soft = {}
                for name in RLIMIT_NAMES:
                    res = getattr(resource, f"RLIMIT_{name}", None)
                    if res is not None:
                        soft[name] = resource.getrlimit(res)[0]
                rlimits = propagated_rlimits(
                    config.get("PropagateResourceLimits"), config.get("PropagateResourceLimitsExcept"), soft
                )
                self._submitter = Submitter(
                    os.getcwd(),
                    socket.gethostname(),
                    mask,
                    os.getpriority(os.PRIO_PROCESS, 0),
                    rlimits,
                    self._nodes_unpinned,
                    _external_launcher(config),
                )
            return self._submitter

    def _controller_config(self) -> dict[str, Any]:
        if self._config is None:
            self._config = self._controller_config_fresh()
        return self._config

    # --- reading state: one Jobs.load() (slurmctld) + one sacct (slurmdbd) ---

    def _load_jobs(self, argv: list[str]) -> list[Any]:
        jobs = self._call(argv, lambda: self._ps.Jobs.load())
        return list(jobs.values())

    def query_live(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        ids = set(unique_ids(job_ids))
        if not ids:
            return {}
        out: dict[str, JobInfo] = {}
        for job in self._load_jobs(["squeue", "-j", ",".join(sorted(ids))]):
            rows = job_rows(job)
            if any(i.job_id in ids or i.array_job_id in ids or str(job.id) in ids for i in rows):
                out.update((i.job_id, i) for i in rows)
        return out

    def find_live(self, name_prefix: str) -> dict[str, JobInfo]:
        me = os.getuid()
        live: dict[str, JobInfo] = {}
        for job in self._load_jobs(["squeue", "--me"]):
            if job.user_id == me and (job.name or "").startswith(name_prefix):
                live.update((i.job_id, i) for i in job_rows(job))
        return live

    def comments_live(self, ids: list[str]) -> dict[str, str]:
        wanted = set(ids)
        comments = {}
        for job in self._load_jobs(["squeue", "-j", ",".join(ids)]):
            if job.comment:
                for row in job_rows(job):
                    if row.job_id in wanted or row.array_job_id in wanted:
                        comments[row.job_id] = job.comment
        return comments

    # --- acting ---

    def hold(self, job_ids: Iterable[str]) -> list[str]:
        complaints = []
        for job_id in unique_ids(job_ids):
            try:
                # Job.hold() as pyslurm ships it: priority 0, the hold `scontrol hold` sets (hold(mode="user")
                # dereferences a NULL pointer in pyslurm 22.5 and 25.11 and kills the process).
                self._call(["scontrol", "hold", job_id], self._job(job_id).hold)
            except SlurmUnavailableError:
                raise
            except SlurmCommandError as ex:
                complaints.append(f"hold {job_id}: {ex.stderr}")
        return complaints

    def release(self, job_ids: Iterable[str]) -> None:
        for job_id in unique_ids(job_ids):
            self._call(["scontrol", "release", job_id], self._job(job_id).release)

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = unique_ids(job_ids)
        if getattr(self._ps, "slurm_kill_job2", None) is None:
            # pyslurm 25.11 has only Job(id).cancel(), by a job's own id: a task of an array that is still pending
            # as one record ("123_[0-7]") has none, so array tasks go to scancel, all in one command.
            tasks = [job_id for job_id in ids if "_" in job_id]
            if tasks:
                super().cancel(tasks)
            ids = [job_id for job_id in ids if "_" not in job_id]
        for job_id in ids:
            # What scancel does per id: SIGKILL to the whole job (string id: "123" or an array task "123_4").
            # Unknown or finished ids are not an error (scancel exits 0 for them too); callers read state back.
            self._call(["scancel", job_id], functools.partial(self._kill, job_id))

    def _kill(self, job_id: str) -> None:
        kill_job2 = getattr(self._ps, "slurm_kill_job2", None)  # the old API (22.5, 24.11): takes "123_4" as is
        if kill_job2 is None:  # pyslurm 25.11: Job(id).cancel(), SIGKILL to the whole job
            try:
                self._job(job_id).cancel()
            except self._ps.RPCError as ex:
                if getattr(ex, "errno", None) not in (_INVALID_JOB_ID, _ALREADY_DONE):
                    raise
            return
        try:
            kill_job2(job_id.encode(), 9, 0)
        except ValueError as ex:  # the old API's error: (message, errno)
            message, errno = (list(ex.args) + ["", None])[:2]
            if errno not in (_INVALID_JOB_ID, _ALREADY_DONE):
                raise self._error(["scancel", job_id], errno, str(message)) from None

    def update_dependency(self, job_id: str, expression: str) -> None:
        # "" would leave the dependency as it is through pyslurm; Slurm clears it on "0" (as `Dependency=`).
        changes = self._ps.JobSubmitDescription(dependencies=expression or "0")
        argv = ["scontrol", "update", f"JobId={job_id}", f"Dependency={expression}"]
        self._call(argv, lambda: self._job(job_id).modify(changes))

    def _job(self, job_id: str) -> Any:
        """A pyslurm Job handle; an array task ("123_4") by its own job id, as slurmctld holds it."""
        if "_" not in job_id:
            return self._ps.Job(int(job_id))
        base, _, task = job_id.partition("_")
        for job in self._load_jobs(["squeue", "-j", job_id]):
            if str(job.array_id) == base and str(job.array_task_id) == task:
                return self._ps.Job(int(job.id))
        raise SlurmCommandError(["scontrol", "show", "job", job_id], 1, "", "Invalid job id specified")

    # --- the cluster, for pre-flight ---

    def read_cluster(self) -> ClusterInfo:
        user = user_name()
        commands = client_reads(user)
        # The commands run in threads while this thread asks slurmctld through pyslurm.
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            pending = {key: run_read(pool, argv) for key, argv in commands.items()}
            config = self._controller_config()  # the probe's read of a moment ago: no second RPC
            partitions = self._call(["scontrol", "show", "partition"], lambda: self._ps.Partitions.load())
            nodes = self._call(["scontrol", "show", "node"], lambda: self._ps.Nodes.load())
            # every user's jobs, finished ones too (Jobs.load() is what `squeue -t all` downloads): the table's
            # occupancy for pre-flight, and the user's queued jobs
            read_at = datetime.now().astimezone()
            loaded = self._load_jobs(["squeue", "-t", "all"])

        def read(key: str, parse: Callable[[str], T]) -> T:
            proc = pending[key].result()
            try:
                return parse(proc.stdout)
            except SlurmOutputError as ex:
                raise ex.of_command(commands[key]) from None

        me = os.getuid()
        info = ClusterInfo(
            user=user,
            config={k: str(v) for k, v in config.items()},
            partitions={p.name: partition_info(p) for p in partitions.values()},
            nodes=[node_info(n) for n in nodes.values()],
            queued=[
                QueuedJob(row.job_id, job.qos or "", job.account or "")
                for job in loaded
                if job.user_id == me and str(job.state) in UNFINISHED_SLURM_STATES
                for row in job_rows(job)
            ],
            job_table=job_table(loaded, read_at),
        )
        add_client_reads(info, read)
        return info

    def _controller_config_fresh(self) -> dict[str, Any]:
        """`scontrol show config` as key -> value, in one RPC (the probe's reader: the same names everywhere)."""
        self._config = self._call(["scontrol", "show", "config"], lambda: controller_config(self._ps))
        return self._config

    # --- errors ---

    def _call(self, argv: list[str], action: Callable[[], T]) -> T:
        """Run one pyslurm call; its RPCError becomes the error the equivalent command would have raised, and
        slurmctld's "Rate limit exceeded" is waited out as for a command (`backoff.retry`)."""

        def once() -> T:
            if runner.command_observer is not None:
                runner.command_observer(["pyslurm:", *argv])
            try:
                return action()
            except self._ps.RPCError as ex:
                raise self._error(argv, getattr(ex, "errno", None), getattr(ex, "msg", None) or str(ex)) from None

        return backoff.retry(once)

    def _error(self, argv: list[str], errno: int | None, message: str) -> SlurmCommandError:
        """The error the equivalent command's answer would have raised (runner.classify's kinds, by errno)."""
        said = f"{message} (pyslurm, errno {errno})"
        if errno in backoff.RATE_LIMIT_ERRNOS or backoff.is_rate_limited_text(message):
            return RateLimitedError(argv, errno, "", said)
        if errno in _TABLE_FULL and argv[:1] == ["sbatch"]:
            return JobTableFullError(argv, errno, "", said)
        if errno in runner.UNREACHABLE_ERRNOS:  # sbatch/squeue: "Unable to contact slurm controller"
            return SlurmUnavailableError(argv, errno, "", said, summary=runner.CONTROLLER_DOWN)
        return SlurmCommandError(argv, errno, "", said)


_NO_VAL = 0xFFFFFFFE  # Slurm's "not set" for a 32-bit field


def _sbatch_like_description(pyslurm: Any) -> Any:
    """pyslurm's JobSubmitDescription without its own defaults for what sbatch leaves unset (tasks, CPUs per task:
    sent as 1 they change how Slurm sizes the job); the working directory and environment defaults stay."""

    class Description(pyslurm.JobSubmitDescription):
        def _set_defaults(self) -> None:
            desc: Any = self
            if not desc.working_directory:
                desc.working_directory = os.getcwd()
            if not desc.environment:
                desc.environment = "ALL"

    return Description


def _external_launcher(config: dict[str, Any]) -> bool:
    """Whether this cluster's sbatch adds the MPI external-launcher variables: Slurm 23.11 and later, unless
    MpiParams says disable_slurm_hydra_bootstrap (then only the Open MPI/PRRTE ones; not told apart here: such a
    cluster gets all of them, and the Hydra ones do nothing where Hydra is not used)."""
    from slurmdag.backends.choice import release

    found = release(str(config.get("SLURM_VERSION", "")))
    return found is not None and found >= (23, 11)


def _leave_node_count_to_slurm() -> bool:
    """pyslurm 22.5 sends a job without `nodes` as exactly 1-1 nodes; sbatch sends no node count at all, so
    Slurm may spread its tasks (and shows NumNodes=1, not 1-1). Make pyslurm send what sbatch sends; False when this
    pyslurm has no such function to wrap (the caller then leaves such jobs to sbatch)."""
    try:
        from pyslurm.core.job import submission
    except ImportError:
        return False
    original = getattr(submission, "_parse_nodes", None)
    if original is None:
        return False
    if getattr(original, "slurmdag_unpinned", False):
        return True

    def parse_nodes(value: Any) -> tuple[int, int]:
        return (_NO_VAL, _NO_VAL) if value is None else original(value)

    parse_nodes.slurmdag_unpinned = True  # type: ignore[attr-defined]
    submission._parse_nodes = parse_nodes
    return True


def job_table(jobs: Iterable[Any], read_at: datetime) -> JobTable:
    """slurmctld's job table from pyslurm's jobs, counted as the CLI backend counts `squeue -r -t all` rows (job_rows'
    rule: each waiting task of a pending array on its own), finished jobs with the time they ended. Pre-flight reads
    it with every submit and the table holds up to MaxJobCount (10000) jobs: each attribute is read once, and the
    end times are made in UTC (aware, so they compare with local ones; converting each to local time took 3 us)."""
    held = 0
    ends = []
    for job in jobs:
        rows = 1
        if job.array_id is not None and job.array_task_id is None:
            waiting = job.array_tasks_waiting
            if waiting:
                rows = len(array_indexes(str(waiting)))
        held += rows
        if slurm_finished(str(job.state or "")):
            end = job.end_time
            if end:
                ends.extend([datetime.fromtimestamp(int(end), UTC)] * rows)
    return JobTable(held, tuple(sorted(ends)), read_at)


def job_rows(job: Any) -> list[JobInfo]:
    """One pyslurm Job as the CLI backend's squeue rows: a pending array's record becomes one row per waiting task
    (squeue -r), an array task is keyed "<array id>_<task>", a plain job by its id."""
    state = str(job.state or "").split(" ", 1)[0].upper()
    nodes = job.allocated_nodes or None
    ran = nodes is not None
    reason = job.state_reason
    common: dict[str, Any] = {
        "name": job.name or "",
        "state": state,
        "reason": None if reason in (None, "", "None") else reason,
        "elapsed": _elapsed(job.run_time or 0),
        "start": _time_text(job.start_time) if ran else None,
        "end": _time_text(job.end_time) if ran else None,
        "node_list": nodes,
        "source": "squeue",
    }
    array_id = job.array_id
    task = job.array_task_id
    if array_id is None:
        return [JobInfo(job_id=str(job.id), array_job_id=str(job.id), array_task=None, **common)]
    waiting = job.array_tasks_waiting
    if task is not None or not waiting:
        # pyslurm 22.5 reads task index 0 as "not set": a task record without a list of waiting tasks is task 0.
        task = task or 0
        return [JobInfo(job_id=f"{array_id}_{task}", array_job_id=str(array_id), array_task=task, **common)]
    return [
        JobInfo(job_id=f"{array_id}_{i}", array_job_id=str(array_id), array_task=i, **common)
        for i in array_indexes(str(waiting))
    ]


def _elapsed(seconds: int) -> str:
    """squeue's %M: M:SS, H:MM:SS or D-HH:MM:SS."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _time_text(stamp: Any) -> str | None:
    """squeue's %S/%e: local time, ISO without zone."""
    if not stamp:
        return None
    return datetime.fromtimestamp(int(stamp)).strftime("%Y-%m-%dT%H:%M:%S")


def partition_info(p: Any) -> Partition:
    max_time = p.max_time  # minutes, or a string like "UNLIMITED"
    return Partition(
        p.name,
        expand_hostlist(p.nodes or ""),
        bool(p.is_default),
        str(p.state or "UP").upper(),
        p.max_nodes if isinstance(p.max_nodes, int) else None,
        max_time * 60 if isinstance(max_time, int) else None,
    )


def node_info(n: Any) -> Node:
    gres = n.configured_gres
    if isinstance(gres, dict):
        gres = ",".join(f"{k}:{v}" for k, v in gres.items())
    return Node(
        n.name,
        int(n.total_cpus or 0),
        int(n.real_memory or 0),
        list(n.partitions or []),
        str(gres or ""),
        list(n.available_features or []),
    )
