"""Where each job of a DAG writes its output, and finding those files again (`slurmdag logs`, `status`).

Slurm's default (`slurm-%j.out` in the directory sbatch ran in) scatters files wherever you submitted from. A DAG's
allocations write instead into one folder per DAG: `<store>/dags/<id>/logs/` by default, `$SLURMDAG_LOG_DIR/<id>/`
or `submit --log-dir DIR` (then `DIR/<id>/`) when set. Files are `<allocation>_<jobid>.out` for a single job and
`<allocation>_<arrayjobid>_<task>.out` for a task's; stderr goes into the same file. An allocation's own `output:`
/ `error:` (or a `script:`'s `#SBATCH --output`) wins. Join jobs write nothing (/dev/null), like the gate. The
options themselves are written by compiler/render.py (`sbatch_options`, `default_output`); this module reads them.

Slurm substitutes `%j`, `%A`, `%a`... when the job starts; `expand` does the same for a known job, so paths are
shown without asking Slurm (it knows them only while a job is in its memory).
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from slurmdag.compiler import render
from slurmdag.model import run_layout
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.state.store import DagRecord, Store

if TYPE_CHECKING:
    from slurmdag.runs.status import DagStatus

LOG_DIR_ENV = "SLURMDAG_LOG_DIR"
DEV_NULL = render.DEV_NULL
NO_ARRAY_TASK = 4294967294  # what Slurm writes for %a in a job that is not an array task


def log_dir_for(store: Store, dag_id: str, base: str | os.PathLike[str] | None = None) -> Path:
    """The folder a new DAG's logs go to: `base/<id>`, `$SLURMDAG_LOG_DIR/<id>`, else the DAG's store folder."""
    chosen = base if base is not None else os.environ.get(LOG_DIR_ENV) or None
    if chosen is not None:
        return Path(chosen).expanduser().absolute() / dag_id
    return store.dag_dir(dag_id) / "logs"


def run_dir_for(store: Store, dag_id: str, base: str | os.PathLike[str] | None = None) -> Path:
    """A new DAG's run folder (SLURMDAG_RUN_DIR of its jobs, model/run_layout.py): `run` in the folder its logs go
    to when `submit --log-dir`/$SLURMDAG_LOG_DIR chose one (`base/<id>/run`), else in its store folder."""
    chosen = base if base is not None else os.environ.get(LOG_DIR_ENV) or None
    if chosen is not None:
        return run_layout.run_dir(Path(chosen).expanduser().absolute() / dag_id)
    return run_layout.run_dir(store.dag_dir(dag_id))


def prepare_run_dir(run_dir: str | os.PathLike[str]) -> None:
    """Make the run folder and its `bin/slurmdag-output` (jobs find it first on their PATH) before any job runs.
    Kept as it is when it exists: a resumed DAG's outputs stay."""
    helper = run_layout.helper_path(run_dir)
    os.makedirs(helper.parent, mode=0o700, exist_ok=True)
    os.makedirs(Path(run_dir) / run_layout.OUTPUTS_DIR_NAME, mode=0o700, exist_ok=True)
    if helper.exists() and helper.read_text() == run_layout.HELPER_SCRIPT:
        return
    tmp = helper.with_name(f".{helper.name}.{os.getpid()}")
    tmp.write_text(run_layout.HELPER_SCRIPT)
    tmp.chmod(0o755)
    tmp.replace(helper)


# --- expanding Slurm's filename patterns ---

_TOKEN = re.compile(r"%(\d*)([%AaJjNnstuxb])")


@dataclass(frozen=True)
class JobRef:
    """What Slurm substitutes into one job's file names."""

    job_id: str  # the job's own id (an array task's own id when known, else the array id)
    array_job_id: str
    task: int | None  # array task index; None for a single job, or for every task of an array (then %a is `*`)
    name: str  # the Slurm job name
    array: bool = False


def expand(pattern: str, ref: JobRef, user: str | None = None) -> str:
    """A `--output` pattern with the values of one job substituted; values only known on the node (%N, %s, %t
    of another step) become `*` so the caller can look the file up with a glob."""
    if "\\" in pattern:  # sbatch: a backslash anywhere turns substitution off
        return pattern.replace("\\", "")

    def sub(m: re.Match[str]) -> str:
        width, key = m.group(1), m.group(2)
        number: int | None = None
        if key == "%":
            return "%"
        if key == "A":
            number = int(ref.array_job_id)
        elif key == "a":
            if ref.task is None:
                return "*" if ref.array else str(NO_ARRAY_TASK)
            number = ref.task
        elif key == "j":
            if ref.array and ref.job_id == ref.array_job_id and ref.task is not None:
                return "*"  # an array task's own id is known only to Slurm
            number = int(ref.job_id)
        elif key == "J":
            return f"{ref.job_id}.batch"
        elif key == "b":
            if ref.task is None:
                return "*" if ref.array else "0"
            number = ref.task % 10
        elif key in "nt":
            number = 0  # the batch script runs as node 0, task 0
        elif key == "x":
            return ref.name
        elif key == "u":
            return user or getpass.getuser()
        else:  # %N (node name), %s (step)
            return "*"
        return str(number).zfill(int(width)) if width else str(number)

    return _TOKEN.sub(sub, pattern)


# --- a DAG's log paths ---


@dataclass(frozen=True)
class LogPaths:
    allocation: str
    task: int | None
    stdout: str  # an absolute path, or a glob when a token could not be known
    stderr: str  # == stdout when stderr goes into the same file

    @property
    def shared(self) -> bool:
        return self.stderr == self.stdout


def _option_pattern(job: PlannedJob, record: DagRecord, key: str) -> str | None:
    """The job's --output/--error as its sbatch call said (its own, the DAG's log folder, /dev/null for a join)."""
    from slurmdag.runs.submit import submission_of

    return dict(render.sbatch_options(job, submission_of(record))).get(key)


def _working_dir(job: PlannedJob, record: DagRecord) -> Path:
    base = Path(record.submit_dir or ".")
    chdir = job.options.get("chdir")
    return base / chdir if chdir else base


def paths_for(job: PlannedJob, record: DagRecord, ref: JobRef, user: str | None = None) -> LogPaths:
    """Where this job (or array task) writes stdout and stderr."""
    # Slurm's own default when neither the workflow nor slurmdag named a file (DAGs submitted before log folders)
    out = _option_pattern(job, record, "output") or ("slurm-%A_%a.out" if job.array else "slurm-%j.out")
    err = _option_pattern(job, record, "error") or out
    cwd = _working_dir(job, record)
    stdout = str(cwd / expand(out, ref, user))
    stderr = str(cwd / expand(err, ref, user))
    return LogPaths(job.name, ref.task, stdout, stderr)


def job_ref(job: PlannedJob, record: DagRecord, dag_id: str, task: int | None = None) -> JobRef | None:
    """The ids of one allocation's job (or of one Slurm task of it) in the current attempt; None if never
    submitted."""
    from slurmdag.state import attempt_history

    current = attempt_history.current_job_ids(record) if record.attempts else record.job_ids
    job_id = current.get(job.name)
    if job_id is None:
        return None
    if job.array:
        if record.attempts:
            sources = attempt_history.task_sources(record, job.name, [task] if task is not None else [])
            job_id = sources.get(task, job_id) if task is not None else job_id
        return JobRef(job_id, job_id, task, render.slurm_job_name(dag_id, job.name), array=True)
    return JobRef(job_id, job_id, None, render.slurm_job_name(dag_id, job.name))


def task_job(plan: Plan, name: str, task: int) -> tuple[PlannedJob, int] | None:
    """The job (the allocation, or one of its parts when split by MaxArraySize) running logical task `task`, and
    that task's index in Slurm."""
    from slurmdag.model.slurm_values import parse_array

    for job in plan.jobs:
        if job.name != name and job.part_of != name:
            continue
        if job.array and (task - job.task_offset) in parse_array(job.array).indexes:
            return job, task - job.task_offset
    return None


def allocation_logs(plan: Plan, record: DagRecord, name: str, task: int | None = None) -> LogPaths | None:
    """The log files of one allocation, or of one task of a task group; None if it was never submitted."""
    job = plan.job(name)
    if job.host is not None and job.host.step is not None:
        # a group member: its step writes into its group job's output (the job's own --output)
        from slurmdag.state import attempt_history

        current = attempt_history.current_job_ids(record) if record.attempts else record.job_ids
        own = current.get(name)
        if own is None:
            return None
        host = plan.job(job.host.job)
        paths = paths_for(host, record, JobRef(own, own, None, render.slurm_job_name(record.dag_id, host.name)))
        return LogPaths(name, None, paths.stdout, paths.stderr)
    if job.host is not None and job.host.task is not None:  # packed into an array job by auto_array
        host = plan.job(job.host.job)
        from slurmdag.state import attempt_history

        current = attempt_history.current_job_ids(record) if record.attempts else record.job_ids
        own = current.get(name)
        if own is None:
            return None
        if "_" in own:  # still the array's task (a resume re-runs it as a job of its own, found below)
            array_id = own.split("_", 1)[0]
            task_ref = JobRef(array_id, array_id, job.host.task, render.slurm_job_name(record.dag_id, host.name), True)
            paths = paths_for(host, record, task_ref)
            return LogPaths(name, None, paths.stdout, paths.stderr)
    if job.array and task is not None:
        found = task_job(plan, name, task)
        if found is None:
            return None
        part, slurm_task = found
        ref = job_ref(part, record, record.dag_id, slurm_task)
        if ref is None:
            return None
        paths = paths_for(part, record, ref)
        return LogPaths(name, task, paths.stdout, paths.stderr)
    ref = job_ref(job, record, record.dag_id)
    return None if ref is None else paths_for(job, record, ref)


def tasks_of(plan: Plan, name: str) -> list[int]:
    """A task group's logical task indexes (over all its parts)."""
    from slurmdag.model.slurm_values import parse_array

    out: list[int] = []
    for job in plan.jobs:
        if (job.name == name or job.part_of == name) and job.array:
            out += [i + job.task_offset for i in parse_array(job.array).indexes]
    return sorted(out)


def resolve_glob(path: str) -> str:
    """A path with `*` for what could not be known: the one file that matches, else the pattern itself."""
    if "*" not in path:
        return path
    import glob

    found = sorted(glob.glob(path))
    return found[0] if len(found) == 1 else path


@dataclass(frozen=True)
class FailedLog:
    allocation: str
    task: int | None
    stdout: str
    more_failed_tasks: int = 0  # other failed tasks of the same group


def failed_logs(status: DagStatus, record: DagRecord, every_task: bool = False) -> list[FailedLog]:
    """The log of every failed allocation (for a task group: of its first failed task, or of each one)."""
    from slurmdag.model.states import FAILURES

    out = []
    for alloc in status.allocations():
        if alloc.tasks is not None:
            failed = [t.index for t in alloc.tasks if t.state in FAILURES]
            for index in failed if every_task else failed[:1]:
                paths = allocation_logs(status.plan, record, alloc.name, index)
                if paths is not None:
                    more = 0 if every_task else len(failed) - 1
                    out.append(FailedLog(alloc.name, index, resolve_glob(paths.stdout), more))
        elif alloc.state in FAILURES:
            paths = allocation_logs(status.plan, record, alloc.name)
            if paths is not None:
                out.append(FailedLog(alloc.name, None, resolve_glob(paths.stdout)))
    return out
