"""Submit a whole Plan to Slurm, all or nothing (design §2.3), through a held gate job (slurm-facts §6).

1. sbatch a tiny gate job with --hold;
2. sbatch every planned job in plan order, each root waiting on `afterok:<gate>`, every job with
   --kill-on-invalid-dep=yes; record each job id (atomic write) before submitting the next;
3. scontrol release <gate>: one RPC starts the DAG.
On any failure before 3 (sbatch refused, Slurm unreachable, SIGINT/SIGTERM, a bug) `withdraw` cancels the gate and
every job of the DAG, reads their states back, marks the submission failed and raises SubmitError. Nothing can have
run: every job waits, directly or through its parents, on the still-held gate.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.compiler import render
from slurmdag.model.errors import (
    JobTableFullError,
    RateLimitedError,
    SlurmCommandError,
    SlurmdagError,
    SlurmOutputError,
    SlurmUnavailableError,
    SubmitError,
)
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.sbatch_options import ParsedOption
from slurmdag.model.slurm_values import format_walltime
from slurmdag.model.states import AllocationState, allocation_state
from slurmdag.policy.preflight import JOB_TABLE_WAIT
from slurmdag.runs import logs
from slurmdag.runs.confirm import unfinished
from slurmdag.state.store import FAILED, SUBMITTED, SUBMITTING, DagLock, DagRecord, Store

GATE_NAME = "+gate"  # '+' cannot occur in an allocation name, so the gate never collides with one
# Options of the planned jobs the gate copies so it can run where they run (site-required account, QOS...).
_GATE_INHERITS = ("partition", "account", "qos", "reservation", "clusters")
_GATE_WALLTIME = 60  # seconds; it runs `exit 0`

# How a dependency that can never be satisfied is cleared: by Slurm itself (--kill-on-invalid-dep=yes), or by
# `slurmdag reconcile` (for sites that disable the kill; jobs say =no so a site-wide kill_invalid_depend stays out).
CASCADE_NATIVE = "native"
CASCADE_RECONCILER = "reconciler"
CASCADES = (CASCADE_NATIVE, CASCADE_RECONCILER)


def submission_of(record: DagRecord) -> render.Submission:
    """What binds the jobs of this DAG's submissions: its id, cascade mechanism and log folder."""
    return render.Submission(record.dag_id, record.cascade != CASCADE_RECONCILER, record.log_dir, record.run_dir)


def gate_options(plan: Plan, submission: render.Submission) -> list[render.Option]:
    """The held gate's sbatch options (its script block and its command line alike), sorted."""
    first = plan.jobs[0].options if plan.jobs else {}
    options = {k: first[k] for k in _GATE_INHERITS if first.get(k)}
    options.update(
        {
            "hold": None,
            "job-name": render.slurm_job_name(submission.dag_id, GATE_NAME),
            "comment": render.job_comment(submission.dag_id, GATE_NAME),
            "ntasks": "1",
            "cpus-per-task": "1",
            "time": format_walltime(_GATE_WALLTIME),
            "output": render.DEV_NULL,
            "error": render.DEV_NULL,
        }
    )
    return sorted(options.items())


def gate_script(plan: Plan, submission: render.Submission) -> str:
    block = "".join(f"#SBATCH {line}\n" for line in render.directive_lines(gate_options(plan, submission)))
    why = "# slurmdag gate: the DAG's roots wait on this held job until every job is submitted.\n"
    return f"#!/bin/sh\n{block}{why}exit 0\n"


def submission_scripts(
    plan: Plan, submission: render.Submission, directives: dict[str, Sequence[ParsedOption]] | None = None
) -> dict[str, str]:
    """The script files of one submission (job name -> text; the gate's as GATE_NAME): each job's compiled script
    with its #SBATCH block saying what its sbatch call says. `directives`, when given, receives each job's #SBATCH
    block as read while checking it (handed to the backend with the job: the pyslurm backend needs them)."""
    scripts = {}
    for job in plan.submissions():
        bound = render.bind(job, submission)
        scripts[job.name] = bound.text
        if directives is not None:
            directives[job.name] = bound.directives
    scripts[GATE_NAME] = gate_script(plan, submission)
    return scripts


def dependency_expression(job: PlannedJob, job_ids: dict[str, str], gate_id: str) -> str:
    """The --dependency value: plan terms with real ids; a root waits on the gate instead."""
    if job.dependency is None or not job.dependency.terms:
        return f"afterok:{gate_id}"
    return job.dependency.render(job_ids)


def job_options(job: PlannedJob, submission: render.Submission, dependency: str) -> list[str]:
    """sbatch's arguments for one job: the options its script's #SBATCH block holds, and its --dependency."""
    return [*render.command_line(render.sbatch_options(job, submission)), f"--dependency={dependency}"]


# --- dry run ---


@dataclass(frozen=True)
class PlannedSubmission:
    """What `submit --dry-run` shows for one job: the sbatch options, dependencies by job name."""

    name: str
    kind: str
    options: list[str]
    dependency: str


def describe(plan: Plan, cascade: str = CASCADE_NATIVE, log_dir: str = "<log dir>") -> list[PlannedSubmission]:
    names = {j.name: j.name for j in plan.jobs}
    names.update(hosted_job_ids(plan, names))
    submission = render.Submission("<dag>", cascade != CASCADE_RECONCILER, log_dir)
    out = []
    for job in plan.submissions():
        dep = dependency_expression(job, names, "<gate>")
        out.append(PlannedSubmission(job.name, job.kind, job_options(job, submission, dep), dep))
    return out


# --- signals: turned into a flag while submitting, checked between sbatch calls ---


class _SignalReceivedError(Exception):
    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class SignalGuard:
    """SIGINT/SIGTERM only set a flag, so an sbatch is never abandoned half-way; the loop raises at a safe point and
    the submission is withdrawn. SIGHUP (the terminal or SSH connection went away) is noted and ignored: a dropped
    connection is not a request to stop, so the submission is finished (docs/commands.md, "Hang-ups")."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.hung_up = False

    def check(self) -> None:
        if self.received is not None:
            raise _SignalReceivedError(self.received)

    def _handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.hung_up = True
        elif self.received is None:
            self.received = signum


_GUARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _guard_signals() -> Iterator[SignalGuard]:
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, guard._handle) for s in _GUARDED}
    try:
        yield guard
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Keep SIGINT/SIGTERM/SIGHUP out while releasing the gate and recording it: the DAG is then committed."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(_GUARDED))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def hangup_finishes() -> Iterator[list[bool]]:
    """Around a whole `submit`/`resume`/`redo` command: a SIGHUP before the submission starts (while the workflow is
    compiled and the cluster read) does not kill the process either. Yields a one-element list set to True on a
    hang-up. Outside the main thread (an application using the Python API) the caller's handlers stay."""
    seen = [False]
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def noted(_signum: int, _frame: object) -> None:
        seen[0] = True

    previous = signal.signal(signal.SIGHUP, noted)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGHUP, previous)


# --- submit ---


def submit_plan(
    plan: Plan,
    store: Store,
    backend: Backend,
    workflow: str | None = None,
    cascade: str = CASCADE_NATIVE,
    log_dir: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    before_jobs: Callable[[DagRecord], None] | None = None,
) -> DagRecord:
    """Submit every job of `plan`; return the record of the submitted DAG or raise SubmitError.

    `log_dir`: the folder under which the DAG's log folder is made (default: $SLURMDAG_LOG_DIR, else the store).
    `before_jobs(record)`: called once the DAG's folders exist and before its first sbatch (the Python API writes its
    steps' calls into the run folder there); if it raises, the submission is withdrawn like any failure."""
    if not plan.jobs:
        raise SubmitError("the plan has no jobs: nothing to submit")
    if cascade not in CASCADES:
        raise SubmitError(f"unknown cascade mechanism {cascade!r} (choose {' or '.join(CASCADES)})")
    kill_invalid_dep = cascade != CASCADE_RECONCILER

    directives: dict[str, Sequence[ParsedOption]] = {}

    def scripts(dag_id: str) -> dict[str, str]:
        folder = str(logs.log_dir_for(store, dag_id, log_dir))
        run_dir = str(logs.run_dir_for(store, dag_id, log_dir))
        return submission_scripts(plan, render.Submission(dag_id, kill_invalid_dep, folder, run_dir), directives)

    record, lock = store.create(plan, workflow=workflow, scripts=scripts, durable=False)
    record.cascade = cascade
    record.submit_dir = os.getcwd()
    record.log_dir = str(logs.log_dir_for(store, record.dag_id, log_dir))
    record.run_dir = str(logs.run_dir_for(store, record.dag_id, log_dir))
    # The scripts are fsynced while sbatch runs (they are in the page cache, which is all sbatch needs).
    syncer = threading.Thread(target=_sync_quietly, args=(store, record.dag_id), daemon=True)
    syncer.start()
    with lock:
        try:
            return submit_gated(
                plan,
                store,
                backend,
                record,
                record.job_ids,
                on_progress=on_progress,
                before_jobs=before_jobs,
                directives=directives,
            )
        finally:
            syncer.join()


def _sync_quietly(store: Store, dag_id: str) -> None:
    try:
        store.sync_files(dag_id)
    except OSError:
        pass  # only durability across a power loss is at stake; the files are written


def submit_gated(
    plan: Plan,
    store: Store,
    backend: Backend,
    record: DagRecord,
    job_ids: dict[str, str],
    on_released: Callable[[DagRecord], None] | None = None,
    on_withdrawn: Callable[[DagRecord, str, WithdrawOutcome], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    write_scripts: bool = False,
    before_jobs: Callable[[DagRecord], None] | None = None,
    directives: Mapping[str, Sequence[ParsedOption]] | None = None,
) -> DagRecord:
    """Submit `plan`'s jobs behind a new held gate into an existing, locked record; ids go into `job_ids`.

    `write_scripts`: write the plan's scripts (and the gate's) bound to this submission first; `resume`/`redo` do,
    since their jobs differ from the stored ones (task subsets, a new log folder). `submit` has `create` write them.

    `on_progress(submitted, total)` is called after each accepted sbatch (from the submitting threads).

    `directives`: each job's #SBATCH block as read when its script was written (`submission_scripts`), passed to
    the backend with the job (`write_scripts` collects them itself).

    `submit` passes record.job_ids; `resume`/`redo` (slurmdag/runs/recovery.py) pass the new attempt's dict, since their
    sub-plan depends only on jobs of the same attempt, and use the hooks to keep the record's history right.
    """
    dag_id = record.dag_id
    current = "the gate job"
    released = False
    if record.log_dir is None:  # a DAG recorded before log folders existed: its new attempt gets one
        record.log_dir = str(logs.log_dir_for(store, dag_id))
        record.submit_dir = record.submit_dir or os.getcwd()
    if record.run_dir is None:  # a DAG recorded before run folders existed: its new attempt gets one
        record.run_dir = str(logs.run_dir_for(store, dag_id))
    with _guard_signals() as guard:
        table_full = TableFullWait(guard)
        try:
            # Slurm does not create a missing output folder (the job's output would be lost): made before any job
            os.makedirs(record.log_dir, mode=0o700, exist_ok=True)
            logs.prepare_run_dir(record.run_dir)
            if before_jobs is not None:
                current = "the DAG's run folder"
                before_jobs(record)
                current = "the gate job"
            submission = submission_of(record)
            if write_scripts:
                collected: dict[str, Sequence[ParsedOption]] = {}
                store.write_scripts(dag_id, submission_scripts(plan, submission, collected))
                directives = collected
            gate_argv = render.command_line(gate_options(plan, submission))
            gate_id = record.gate_job_id = table_full.submit(backend, str(store.gate_script_path(dag_id)), gate_argv)
            store.save(record)

            accepted = itertools.count(1)
            total = len(plan.submissions())

            def submit_one(job: PlannedJob) -> str:
                dep = dependency_expression(job, job_ids, gate_id)
                options = job_options(job, submission, dep)
                script = str(store.script_path(dag_id, job.name))
                job_id = table_full.submit(backend, script, options, (directives or {}).get(job.name))
                if on_progress is not None:
                    try:
                        on_progress(next(accepted), total)  # count() is atomic under the GIL
                    except Exception:  # noqa: BLE001 - a report (to a terminal that hung up, say) never fails a submission
                        pass
                return job_id

            waves = submission_waves(plan)
            hosting = any(j.host is not None for j in plan.allocations())  # else nothing to add after each wave
            saved = time.monotonic()
            for number, wave in enumerate(waves, 1):
                current = _describe_job(wave[0])
                guard.check()
                failed = submit_wave(wave, submit_one, job_ids, guard)
                if hosting:  # a chain is one wave per job: a pass over every allocation each time adds up
                    job_ids.update(hosted_job_ids(plan, job_ids))
                # Recorded at most RECORD_EVERY seconds apart (a chain is one wave per job: rewriting dag.json after
                # each would be quadratic), and after the last wave or a failure. Not fsynced. Nothing depends on
                # the record before the release: every job waits on the held gate, and after a crash `withdraw`
                # finds the jobs not yet recorded by their name prefix.
                if failed is not None or number == len(waves) or time.monotonic() - saved >= RECORD_EVERY:
                    store.save(record, durable=False)
                    saved = time.monotonic()
                if failed is not None:
                    job, ex = failed
                    current = _describe_job(job)
                    raise ex
            guard.check()
            current = "the gate release"
            with _signals_blocked():  # the DAG is committed by the release: no signal may split it from the record
                backend.release([record.gate_job_id])
                released = True
                record.submission = SUBMITTED
                record.pid = None
                if on_released is not None:
                    on_released(record)
                store.save(record)
            return record  # a signal that arrived meanwhile is ignored: the DAG is submitted
        except BaseException as ex:  # noqa: BLE001 - every failure, even a bug or a signal, must withdraw
            if released:
                # The DAG runs; only updating its record failed. It stays "submitting" on disk, and the next
                # status/list sees the released gate and marks it submitted.
                raise
            # Withdraw only this submission's jobs (a resume's record also lists finished jobs of earlier attempts).
            view = record if job_ids is record.job_ids else dc_replace(record, job_ids=dict(job_ids))
            outcome = withdraw(backend, view)
            error = _describe_failure(ex, current)
            if on_withdrawn is not None:
                on_withdrawn(record, error, outcome)
            else:
                record.submission = FAILED
                record.error = error
                record.cleanup_pending = bool(outcome.not_cancelled or outcome.error)
            try:
                store.save(record)
            except SlurmdagError:
                pass  # the SubmitError below says what happened; the store error would hide it
            raise SubmitError(_failure_message(dag_id, error, outcome, current == "the gate release")) from ex


class TableFullWait:
    """The submitting threads' shared patience with a full job table. sbatch answers "Slurm temporarily unable to
    accept job" (slurmctld holds MaxJobCount jobs) after its own retries: not an unreachable controller, and room
    comes back as finished jobs are purged. From the first such answer, every sbatch is tried again for
    JOB_TABLE_WAIT seconds in all; a signal (SIGINT/SIGTERM) stops the waiting. It also tries again an sbatch that
    was killed by a signal before it answered (see `submit`)."""

    PAUSE = 5.0

    def __init__(self, guard: SignalGuard, sleep: Callable[[float], None] | None = None):
        self.guard = guard
        self.sleep = sleep or time.sleep
        self.since: float | None = None
        self.lock = threading.Lock()

    def submit(
        self, backend: Backend, script: str, options: list[str], directives: Sequence[ParsedOption] | None = None
    ) -> str:
        killed = 0
        while True:
            try:
                return backend.submit(script, options, directives)
            except JobTableFullError as ex:
                if ex.returncode is None:
                    # sbatch was stopped inside its retry loop (a short SLURMDAG_SLURM_TIMEOUT): if its last request
                    # got through, the job exists; take it rather than make a second one.
                    found = _find_by_name(backend, options)
                    if found is not None:
                        return found
                pause = self._pause()
                if pause is None or self.guard.received is not None:
                    raise
                self.sleep(pause)
            except SlurmCommandError as ex:
                if ex.returncode is None or ex.returncode >= 0 or killed >= KILLED_SBATCH_RETRIES:
                    raise
                if self.guard.received is not None:  # a Ctrl-C or SIGTERM in that moment: the DAG is withdrawn
                    raise
                # sbatch was killed by a signal before it answered. A hang-up (ssh dropping) signals slurmdag's whole
                # process group, and a child is in it between fork and its setsid(): Python resets its handlers
                # first, so SIGHUP kills it there, before sbatch even runs. Whether its job exists is found out by
                # name (it may have been killed later, by someone else); if not, it is submitted again.
                killed += 1
                found = _find_by_name(backend, options)
                if found is not None:
                    return found

    def _pause(self) -> float | None:
        with self.lock:
            now = time.monotonic()
            if self.since is None:
                self.since = now
            left = self.since + JOB_TABLE_WAIT - now
        return None if left <= 0 else min(self.PAUSE, left)


def _find_by_name(backend: Backend, options: list[str]) -> str | None:
    name = next((o.split("=", 1)[1] for o in options if o.startswith("--job-name=")), None)
    if name is None:
        return None
    found = backend.find_jobs(name, include_accounting=False)
    return next((i.array_job_id for i in found.values() if i.name == name), None)


# How often an sbatch killed by a signal is tried again (TableFullWait.submit).
KILLED_SBATCH_RETRIES = 3

# How often the record is rewritten while the waves go in (seconds); see submit_gated.
RECORD_EVERY = 0.5

# sbatch calls in flight at once for jobs whose parents are all submitted. Each sbatch is a process that mostly
# waits on slurmctld, so a few at a time beat a loop even on 2 cores (docs/performance.md).
SUBMIT_WORKERS = max(1, int(os.environ.get("SLURMDAG_SUBMIT_WORKERS", "4")))


def hosted_job_ids(plan: Plan, job_ids: Mapping[str, str]) -> dict[str, str]:
    """The Slurm ids of hosted allocations whose host has an id: a group member's is its host's job id (its step
    is found by name), a packed array task's is `<array id>_<task>` (what a child's dependency term names)."""
    out: dict[str, str] = {}
    for job in plan.allocations():
        if job.host is not None and job.host.job in job_ids:
            host_id = job_ids[job.host.job]
            out[job.name] = host_id if job.host.task is None else f"{host_id}_{job.host.task}"
    return out


def submission_waves(plan: Plan) -> list[list[PlannedJob]]:
    """The plan's submissions by depth, plan order within a depth: every parent of a job is in an earlier wave.

    A parent outside the plan (a resume's sub-plan waits on jobs submitted before) counts as already submitted; a
    parent hosted by another job counts as that job.
    """
    depth: dict[str, int] = {}
    waves: list[list[PlannedJob]] = []
    host_of = {j.name: j.host.job for j in plan.jobs if j.host is not None}
    for job in plan.submissions():
        parents = [host_of.get(p, p) for p in job.parents()]
        level = 1 + max((depth.get(p, -1) for p in parents), default=-1)
        depth[job.name] = level
        while len(waves) <= level:
            waves.append([])
        waves[level].append(job)
    return [w for w in waves if w]


def submit_wave(
    wave: list[PlannedJob], submit_one: Callable[[PlannedJob], str], job_ids: dict[str, str], guard: SignalGuard
) -> tuple[PlannedJob, BaseException] | None:
    """sbatch every job of `wave` (up to SUBMIT_WORKERS at once); put each id into `job_ids`, in plan order.

    After a failure no later job (in plan order) starts, after a signal none at all; calls in flight finish and
    are recorded, so the record lists every job Slurm accepted. Returns the first failed job and its error.
    """
    got: dict[str, str] = {}
    errors: dict[str, BaseException] = {}
    first_failed = [len(wave)]  # plan-order index of the earliest failure so far

    def one(index: int, job: PlannedJob) -> None:
        # Jobs before a failure are still submitted (as a one-at-a-time loop would have), none after it starts.
        if index > first_failed[0] or guard.received is not None:
            return
        try:
            got[job.name] = submit_one(job)
        except BaseException as ex:  # noqa: BLE001 - handed back to the caller, which withdraws
            errors[job.name] = ex
            first_failed[0] = min(first_failed[0], index)

    try:
        if len(wave) == 1 or SUBMIT_WORKERS == 1:
            for index, job in enumerate(wave):
                one(index, job)
        else:
            with ThreadPoolExecutor(max_workers=min(SUBMIT_WORKERS, len(wave))) as pool:
                for _ in pool.map(one, range(len(wave)), wave):
                    pass
    finally:
        job_ids.update((j.name, got[j.name]) for j in wave if j.name in got)
    failed = next((j for j in wave if j.name in errors), None)
    return None if failed is None else (failed, errors[failed.name])


def _describe_job(job: PlannedJob) -> str:
    if job.kind == "host":
        return f"job {job.name!r} (hosting {', '.join(job.members)})"
    return f"allocation {job.name!r}" if job.kind == "allocation" else f"join job {job.name!r}"


def _describe_failure(ex: BaseException, current: str) -> str:
    if isinstance(ex, _SignalReceivedError):
        return f"{ex} while submitting {current}"
    if isinstance(ex, JobTableFullError):
        return (
            f"Slurm's job table (MaxJobCount) stayed full for {JOB_TABLE_WAIT:.0f} s while submitting {current} "
            f"(SLURMDAG_JOB_TABLE_WAIT): {ex}"
        )
    if isinstance(ex, (SlurmUnavailableError, RateLimitedError)):
        return f"{ex} (while submitting {current})"
    if isinstance(ex, SlurmCommandError):
        detail = (ex.stderr or ex.stdout).strip() or f"exit {ex.returncode}"
        return f"Slurm refused {current}: `{' '.join(ex.argv)}`: {detail}"
    if isinstance(ex, SlurmdagError):
        return f"{current}: {ex}"
    return f"{current}: {type(ex).__name__}: {ex}"


def _failure_message(dag_id: str, error: str, outcome: WithdrawOutcome, released: bool = False) -> str:
    lines = [f"submission of DAG {dag_id} failed: {error}"]
    if outcome.error:
        lines.append(f"could not withdraw the jobs already submitted: {outcome.error}")
        lines.append(f"they wait behind a held gate and cannot start; run `slurmdag cancel {dag_id}` to remove them")
    elif outcome.not_cancelled:
        lines.append(f"jobs still not cancelled: {' '.join(outcome.not_cancelled)} (run `slurmdag cancel {dag_id}`)")
    else:
        lines.append(
            f"withdrew the gate and {outcome.jobs_cancelled} submitted job(s)"
            + ("" if released else "; no job of this DAG ran")
        )
    return "\n".join(lines)


# --- withdrawing a half-submitted DAG ---


@dataclass
class WithdrawOutcome:
    cancelled: list[str] = field(default_factory=list)
    not_cancelled: list[str] = field(default_factory=list)
    gate_id: str | None = None
    error: str | None = None  # Slurm could not be reached or refused

    @property
    def jobs_cancelled(self) -> int:
        return len([j for j in self.cancelled if j != self.gate_id])


def withdraw(backend: Backend, record: DagRecord) -> WithdrawOutcome:
    """Cancel the gate and every job of a DAG that is not yet released, then verify by reading state back.

    Jobs are held first (one scontrol call): cancelling a parent makes its `afternotok`/`afterany` children
    eligible, and a held child cannot start in the moment before its own cancellation arrives.
    """
    outcome = WithdrawOutcome(gate_id=record.gate_job_id)
    recorded = [j for j in [record.gate_job_id, *record.job_ids.values()] if j]
    try:
        # Jobs sbatch created but we never recorded (an sbatch that timed out, a SIGKILL between sbatch and the
        # write) still carry the DAG's name prefix.
        found = backend.find_jobs(render.job_name_prefix(record.dag_id), include_accounting=False)
        ids = list(dict.fromkeys(recorded + sorted({i.array_job_id for i in found.values()})))
        jobs = [j for j in ids if j != record.gate_job_id]
        backend.hold(jobs)
        backend.cancel(ids)
        live = backend.query_live(ids)
        pending = unfinished(ids, live)
        if pending:
            backend.cancel(pending)  # once more; then report what is left
            live = backend.query_live(ids)
            pending = unfinished(ids, live)
    except (SlurmCommandError, SlurmOutputError) as ex:
        outcome.error = str(ex)
        outcome.not_cancelled = recorded
        return outcome
    outcome.not_cancelled = pending
    outcome.cancelled = [j for j in ids if j not in pending]
    return outcome


# --- a submission whose process died (SIGKILL, power loss) ---

# squeue's reason for a job pending because of a hold (`sbatch --hold`: JobHeldUser; `scontrol hold` by root:
# JobHeldAdmin). A released gate that waits for a free CPU says Resources, Priority, ... instead (slurm-facts §2 #30).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin"})


def gate_verdict(gate: JobInfo | None) -> str:
    """Pure: what slurmctld's row of a gate job says about the submission behind it.

    "held"     still held: the submission never finished, nothing behind it can have started;
    "released" released (running, done, or pending for resources): every job was in Slurm before the release;
    "gone"     slurmctld no longer holds it: a held job is never purged, so it was released (or cancelled) long ago;
    "ended"    ended without completing (cancelled, failed): nothing behind it can run.
    """
    if gate is None:
        return "gone"
    if gate.state == "PENDING":
        return "held" if gate.reason in HELD_REASONS else "released"
    if allocation_state(gate.state) in (AllocationState.RUNNING, AllocationState.COMPLETED):
        return "released"  # it started: Running, or Completed by now
    return "ended"


def needs_recovery(record: DagRecord) -> bool:
    return record.submission == SUBMITTING or (record.submission == FAILED and record.cleanup_pending)


def recover_abandoned(store: Store, backend: Backend, dag_id: str) -> str | None:
    """If DAG `dag_id` was left "submitting" by a process that is gone, finish it off; return what was done."""
    return recover_abandoned_many(store, backend, [dag_id]).get(dag_id)


def recover_abandoned_many(store: Store, backend: Backend, dag_ids: Iterable[str]) -> dict[str, str]:
    """Finish off every submission among `dag_ids` whose submitting process is gone; what was done, by DAG id.

    A live submitter holds the DAG lock, so a lock we can take means the submitter is dead. Every gate is read in ONE
    squeue (state and pending reason). A gate that is not held any more means the submission had completed (the
    gate is released only after the last job is in): the DAG is marked submitted and left to run, even if it is
    still pending behind a busy cluster. Only a gate Slurm shows still held (or ended unrun) is withdrawn.
    """
    locked: list[tuple[DagRecord, DagLock]] = []
    try:
        for dag_id in dag_ids:
            if not needs_recovery(store.load(dag_id)):
                continue
            lock = store.lock_dag(dag_id, blocking=False)
            if lock is None:
                continue  # a live process is submitting it right now
            record = store.load(dag_id)  # again, under the lock: it may have finished meanwhile
            if needs_recovery(record):
                locked.append((record, lock))
            else:
                lock.release()
        gates = [r.gate_job_id for r, _ in locked if r.submission == SUBMITTING and r.gate_job_id]
        live = backend.query_live(gates) if gates else {}
        return {record.dag_id: _finish_off(store, backend, record, live) for record, _ in locked}
    finally:
        for _, lock in locked:
            lock.release()


def _finish_off(store: Store, backend: Backend, record: DagRecord, live: dict[str, JobInfo]) -> str:
    dag_id = record.dag_id
    who = f"process {record.pid} on {record.host}" if record.pid else "an earlier slurmdag process"
    if record.submission == SUBMITTING and record.gate_job_id:
        row = live.get(record.gate_job_id)
        if row is not None and row.name != render.slurm_job_name(dag_id, GATE_NAME):
            row = None  # the id now belongs to another job (ids repeat after a cluster reset)
        verdict = gate_verdict(row)
        if verdict in ("released", "gone"):
            record.submission = SUBMITTED
            record.pid = None
            store.save(record)
            if verdict == "gone":
                return (
                    f"DAG {dag_id}: the submitting {who} is gone and slurmctld no longer holds its gate job "
                    f"{record.gate_job_id} (a held gate is never purged, so it was released long ago); "
                    "marked as submitted"
                )
            waiting = f" (its gate waits on {row.reason}: the DAG is left to run)" if row and row.reason else ""
            return f"DAG {dag_id}: the submitting {who} died after releasing the gate; marked as submitted{waiting}"
    outcome = withdraw(backend, record)
    if record.submission == SUBMITTING:
        record.error = f"submission interrupted: the submitting {who} is gone"
    record.submission = FAILED
    record.cleanup_pending = bool(outcome.not_cancelled or outcome.error)
    store.save(record)
    if outcome.error:
        return f"DAG {dag_id}: left half-submitted by {who}; could not cancel its jobs yet: {outcome.error}"
    return (
        f"DAG {dag_id}: left half-submitted by {who}; cancelled its gate and "
        f"{outcome.jobs_cancelled} waiting job(s) (none had started)"
    )
