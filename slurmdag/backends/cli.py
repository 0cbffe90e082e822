"""The default backend: drives sbatch, squeue, sacct, scontrol, scancel and sacctmgr through `runner.run_slurm`."""

from __future__ import annotations

import functools
import getpass
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from slurmdag.backends import runner
from slurmdag.backends.base import Backend, JobInfo
from slurmdag.backends.cluster_info import ClusterInfo, JobTable
from slurmdag.backends.cluster_parse import (
    QUEUE_FORMAT,
    add_client_reads,
    client_reads,
    parse_config,
    parse_job_table,
    parse_nodes,
    parse_partitions,
    parse_queue,
    parse_sbatch_help,
)
from slurmdag.backends.parse import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    parse_comment_rows,
    parse_sacct,
    parse_sbatch_parsable,
    parse_squeue,
)
from slurmdag.model.errors import SlurmCommandError, SlurmOutputError, SlurmUnavailableError
from slurmdag.model.sbatch_options import ParsedOption
from slurmdag.model.states import SACCT_ALL_STATES, slurm_finished

T = TypeVar("T")

# How far back sacct looks when the caller gives no bound; job ids repeat after a cluster reset (slurm-facts §6),
# so an unbounded `sacct -j` may return somebody's old job.
DEFAULT_LOOKBACK = timedelta(days=30)


def _read(argv: Sequence[str], parse: Callable[[str], T], timeout: float | None = None) -> T:
    """Run a Slurm command and parse what it printed; an unreadable output names the command."""
    proc = runner.run_slurm(argv, timeout=timeout)
    try:
        return parse(proc.stdout)
    except SlurmOutputError as ex:
        raise ex.of_command(argv) from None


# When slurmctld's job table is full, sbatch retries by itself, sleeping 1, 2, ... 15 s (120 s in all) before it
# gives up. It is left to finish: then its answer is definite (no job was created), and trying again cannot make a
# second copy of a job, as stopping it in the middle of a request could.
SBATCH_TIMEOUT = max(runner.DEFAULT_TIMEOUT, 180.0)

# One squeue of every job slurmctld holds (squeue downloads them all anyway: slurm-facts §3).
JOB_TABLE_READ = ["squeue", "-h", "-r", "-t", "all", "-o", QUEUE_FORMAT]


# Pre-flight's client commands (sacctmgr, sbatch --help) started ahead by start_client_reads, by argv; read_cluster
# takes each once instead of running it again.
_early_reads: dict[tuple[str, ...], Future] = {}
_early_lock = threading.Lock()


def start_client_reads() -> None:
    """Start the pre-flight reads that both backends take from client commands, now, in daemon threads: `submit`
    does so before it compiles, so their wait on slurmdbd (~0.3 s for three sacctmgr) overlaps the compile instead
    of following it. Daemon threads: a command that stops early (bad input) does not wait for them."""
    for argv in client_reads(user_name()).values():
        key = tuple(argv)
        with _early_lock:
            if key in _early_reads:
                continue
            future: Future = Future()
            _early_reads[key] = future
        threading.Thread(target=_run_into, args=(future, argv), name="slurmdag-early-read", daemon=True).start()


def _run_into(future: Future, argv: list[str]) -> None:
    future.set_running_or_notify_cancel()
    try:
        future.set_result(runner.run_slurm(argv))
    except BaseException as ex:  # noqa: BLE001 - re-raised by whoever reads the result
        future.set_exception(ex)


def run_read(pool: ThreadPoolExecutor, argv: list[str]) -> Future:
    """A client read already started by start_client_reads (taken once: a later read runs afresh), else started
    now in `pool`."""
    with _early_lock:
        early = _early_reads.pop(tuple(argv), None)
    return early if early is not None else pool.submit(runner.run_slurm, argv)


def slurm_time(when: datetime) -> str:
    """sacct -S wants local wall-clock time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def merge_views(live: dict[str, JobInfo], accounted: dict[str, JobInfo]) -> dict[str, JobInfo]:
    """squeue is fresher (sacct lags ~0.2 s); sacct outlives slurmctld's memory and has the exit codes."""
    merged = dict(accounted)
    for key, info in live.items():
        acct = accounted.get(key)
        if acct is not None and slurm_finished(info.state) and acct.state == info.state:
            info = replace(info, exit_code=acct.exit_code, signal=acct.signal, end=info.end or acct.end)
        merged[key] = info
    return merged


class CliBackend(Backend):
    def submit(self, script: str, options: list[str], directives: Sequence[ParsedOption] | None = None) -> str:
        # sbatch reads the script's #SBATCH lines itself: `directives` is of no use here
        return _read(["sbatch", "--parsable", *options, script], parse_sbatch_parsable, timeout=SBATCH_TIMEOUT)

    # --- reading state: one squeue (slurmctld) + one sacct (slurmdbd), whatever the number of ids ---

    def query_live(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        ids = unique_ids(job_ids)
        if not ids:
            return {}
        argv = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", SQUEUE_FORMAT]
        try:
            return _read(argv, parse_squeue)
        except SlurmCommandError as ex:
            # All ids unknown to slurmctld: squeue exits 1 instead of printing nothing (slurm-facts §3).
            if ex.returncode == 1 and "invalid job id" in (ex.stderr + ex.stdout).lower():
                return {}
            raise

    def query_accounting(
        self, job_ids: Iterable[str], since: datetime | None = None, steps: bool = False
    ) -> dict[str, JobInfo]:
        ids = unique_ids(job_ids)
        if not ids:
            return {}
        start = since or (datetime.now(UTC) - DEFAULT_LOOKBACK)
        argv = [
            "sacct",
            *([] if steps else ["-X"]),  # without -X, the same call lists every job's steps too
            "-n",
            "-P",
            "-o",
            SACCT_FIELDS,
            "-S",
            slurm_time(start),
            "-E",
            "now",
            "-j",
            ",".join(ids),
        ]
        return _read(argv, functools.partial(parse_sacct, steps=steps))

    def query(self, job_ids: Iterable[str], since: datetime | None = None, steps: bool = False) -> dict[str, JobInfo]:
        ids = unique_ids(job_ids)
        return merge_views(self.query_live(ids), self.query_accounting(ids, since, steps=steps))

    def find_jobs(
        self, name_prefix: str, since: datetime | None = None, include_accounting: bool = True
    ) -> dict[str, JobInfo]:
        live = self.find_live(name_prefix)
        if not include_accounting:
            return live
        start = since or (datetime.now(UTC) - DEFAULT_LOOKBACK)
        acct = _read(
            [
                "sacct",
                "-X",
                "-n",
                "-P",
                "-o",
                SACCT_FIELDS,
                "-S",
                slurm_time(start),
                "-E",
                "now",
                "-s",
                SACCT_ALL_STATES,
            ],
            parse_sacct,
        )
        return merge_views(live, {k: v for k, v in acct.items() if v.name.startswith(name_prefix)})

    def find_live(self, name_prefix: str) -> dict[str, JobInfo]:
        """The user's jobs slurmctld holds whose name starts with `name_prefix`."""
        live = _read(["squeue", "-h", "-r", "-t", "all", "--me", "-o", SQUEUE_FORMAT], parse_squeue)
        return {k: v for k, v in live.items() if v.name.startswith(name_prefix)}

    def job_comments(self, job_ids: Iterable[str], since: datetime) -> dict[str, str]:
        ids = unique_ids(job_ids)
        if not ids:
            return {}
        sacct = ["sacct", "-X", "-n", "-P", "-o", "JobID,Comment", "-S", slurm_time(since), "-E", "now"]
        comments = _read([*sacct, "-j", ",".join(ids)], parse_comment_rows)
        comments.update(self.comments_live(ids))
        return comments

    def comments_live(self, ids: list[str]) -> dict[str, str]:
        """Comments slurmctld holds (fresher than accounting's), keyed like `query`."""
        try:
            return _read(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%k"], parse_comment_rows)
        except SlurmCommandError as ex:
            if isinstance(ex, SlurmUnavailableError):
                raise
            return {}  # all ids purged from slurmctld (squeue exits 1): what accounting said stands

    def sbatch_options(self) -> set[str] | None:
        try:
            return parse_sbatch_help(runner.run_slurm(["sbatch", "--help"]).stdout)
        except SlurmCommandError:  # no sbatch here, or it cannot find a configuration: nothing to check against
            return None

    # --- the cluster, for pre-flight ---

    def read_job_table(self) -> JobTable:
        read_at = datetime.now().astimezone()
        return _read(JOB_TABLE_READ, lambda text: parse_job_table(text, read_at))

    def read_cluster(self) -> ClusterInfo:
        user = user_name()
        commands = {
            "config": ["scontrol", "show", "config"],
            "partitions": ["scontrol", "show", "partition", "-o"],
            "nodes": ["scontrol", "show", "node", "-o"],
            # every user's jobs, finished ones included: the job table's occupancy, and the user's queued jobs
            "queue": JOB_TABLE_READ,
            **client_reads(user),
        }
        # The reads are independent: run them at once, so pre-flight costs the slowest one, not the sum of eight.
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            pending: dict[str, Future] = {key: run_read(pool, argv) for key, argv in commands.items()}

        def read(key: str, parse: Callable[[str], T]) -> T:
            proc = pending[key].result()  # re-raises that command's SlurmCommandError
            try:
                return parse(proc.stdout)
            except SlurmOutputError as ex:
                raise ex.of_command(commands[key]) from None

        read_at = datetime.now().astimezone()
        info = ClusterInfo(
            user=user,
            config=read("config", parse_config),
            partitions=read("partitions", parse_partitions),
            nodes=read("nodes", parse_nodes),
            queued=read("queue", lambda text: parse_queue(text, user)),
            job_table=read("queue", lambda text: parse_job_table(text, read_at)),
        )
        add_client_reads(info, read)
        return info

    # --- acting ---

    def hold(self, job_ids: Iterable[str]) -> list[str]:
        ids = unique_ids(job_ids)
        if not ids:
            return []
        try:
            runner.run_slurm(["scontrol", "hold", *ids])
        except SlurmCommandError as ex:
            if isinstance(ex, SlurmUnavailableError):
                raise
            # Some ids could not be held (already running or finished); the others were.
            return [ln for ln in (ex.stderr + ex.stdout).splitlines() if ln.strip()]
        return []

    def release(self, job_ids: Iterable[str]) -> None:
        ids = unique_ids(job_ids)
        if ids:
            runner.run_slurm(["scontrol", "release", *ids])

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = unique_ids(job_ids)
        if ids:
            runner.run_slurm(["scancel", *ids])

    def update_dependency(self, job_id: str, expression: str) -> None:
        runner.run_slurm(["scontrol", "update", f"JobId={job_id}", f"Dependency={expression}"])


def unique_ids(job_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(j) for j in job_ids))


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid: sacctmgr wants one
        return str(os.getuid())
