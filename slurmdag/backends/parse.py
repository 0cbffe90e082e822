"""Parsers for the text the Slurm commands print. Pure functions, tested against recorded real output
(tests/fixtures/slurm-output/).
"""

from __future__ import annotations

import re

from slurmdag.backends.base import JobInfo
from slurmdag.model.errors import SlurmOutputError
from slurmdag.model.slurm_values import array_indexes

# Field lists are fixed here and in cli.py together: the parsers depend on their order. Free text (the job
# name) goes last so a '|' inside a foreign job's name cannot shift the other columns.
SQUEUE_FORMAT = "%i|%A|%T|%r|%M|%S|%e|%N|%j"
SACCT_FIELDS = "JobID,JobIDRaw,State,ExitCode,Elapsed,Start,End,NodeList,Reason,JobName"

_SQUEUE_COLUMNS = SQUEUE_FORMAT.count("|") + 1
_SACCT_COLUMNS = SACCT_FIELDS.count(",") + 1
_JOB_ID = re.compile(r"\A(\d+)(?:_(\d+))?\Z")
_PENDING_ARRAY = re.compile(r"\A(\d+)_\[([^\]]+)\]\Z")
_EMPTY = {"", "N/A", "None", "Unknown", "(null)", "None assigned"}


def excerpt(text: str, limit: int = 120) -> str:
    """A line of unexpected output, quoted and cut short enough for an error message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def parse_sbatch_parsable(stdout: str) -> str:
    """`sbatch --parsable` prints `id` or `id;cluster` (possibly after warning lines); return the id."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        raise SlurmOutputError("sbatch --parsable printed nothing, expected a job id")
    job_id = lines[-1].split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmOutputError(f"sbatch --parsable printed {excerpt(lines[-1])}, expected a job id")
    return job_id


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in _EMPTY else text


def _base_state(text: str) -> str:
    # sacct: "CANCELLED by 1000"; squeue never adds a suffix. Keep only the state word.
    return text.strip().split(" ", 1)[0].upper()


def _ids(job_id_text: str, raw_text: str) -> list[tuple[str, str, int | None]]:
    """(key, array job id, task index) for one row; a pending array row ("5_[0-3]") expands to its tasks."""
    job_id_text = job_id_text.strip()
    pending = _PENDING_ARRAY.match(job_id_text)
    if pending:
        base = pending.group(1)
        return [(f"{base}_{i}", base, i) for i in array_indexes(pending.group(2))]
    m = _JOB_ID.match(job_id_text)
    if not m:
        raise SlurmOutputError(f"unexpected job id {excerpt(job_id_text)}")
    if m.group(2) is None:
        return [(m.group(1), m.group(1), None)]
    return [(job_id_text, m.group(1), int(m.group(2)))]


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """Rows of `squeue -h -r -t all -o SQUEUE_FORMAT`."""
    jobs: dict[str, JobInfo] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("|", _SQUEUE_COLUMNS - 1)
        if len(cols) != _SQUEUE_COLUMNS:
            raise SlurmOutputError(f"squeue row has {len(cols)} columns, expected {_SQUEUE_COLUMNS}: {excerpt(line)}")
        job_id, raw, state, reason, elapsed, start, end, nodes, name = cols
        for key, array_id, task in _ids(job_id, raw):
            jobs[key] = JobInfo(
                job_id=key,
                array_job_id=array_id,
                array_task=task,
                name=name,
                state=_base_state(state),
                reason=_value(reason),
                elapsed=_value(elapsed),
                start=_value(start) if _value(nodes) else None,  # a pending job's %S is a forecast
                end=_value(end) if _value(nodes) else None,
                node_list=_value(nodes),
                source="squeue",
            )
    return jobs


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """sacct ExitCode "1:0" -> (1, 0); "0:9" -> (0, 9)."""
    text = text.strip()
    if not text or ":" not in text:
        return None, None
    code, sig = text.split(":", 1)
    try:
        return int(code), int(sig)
    except ValueError:
        return None, None


def parse_sacct(stdout: str, steps: bool = False) -> dict[str, JobInfo]:
    """Rows of `sacct [-X] -n -P -o SACCT_FIELDS`. With duplicate ids (after a cluster reset) the last row wins.

    `steps`: keep the rows of numbered job steps (sacct without -X), keyed `<job id>.<step id>` with the step's
    name (a group member's step is named after it); `batch`/`extern` steps are left out either way."""
    jobs: dict[str, JobInfo] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("|", _SACCT_COLUMNS - 1)
        if len(cols) != _SACCT_COLUMNS:
            raise SlurmOutputError(f"sacct row has {len(cols)} columns, expected {_SACCT_COLUMNS}: {excerpt(line)}")
        job_id, raw, state, exit_text, elapsed, start, end, nodes, reason, name = cols
        if "." in job_id:  # a step (only without -X)
            owner, _, step = job_id.strip().partition(".")
            if steps and step.isdigit():
                code, sig = parse_exit_code(exit_text)
                key = job_id.strip()
                jobs[key] = JobInfo(
                    job_id=key,
                    array_job_id=owner,
                    array_task=None,
                    name=name,
                    state=_base_state(state),
                    exit_code=code,
                    signal=sig,
                    elapsed=_value(elapsed),
                    start=_value(start) if _value(nodes) else None,
                    end=_value(end),
                    node_list=_value(nodes),
                    source="sacct",
                    step=step,
                )
            elif steps and step == "batch":  # accounting has caught up with the job's own run
                jobs[job_id.strip()] = JobInfo(
                    job_id.strip(), owner, None, name, _base_state(state), source="sacct", step="batch"
                )
            continue
        code, sig = parse_exit_code(exit_text)
        for key, array_id, task in _ids(job_id, raw):
            jobs[key] = JobInfo(
                job_id=key,
                array_job_id=array_id,
                array_task=task,
                name=name,
                state=_base_state(state),
                reason=_value(reason),
                exit_code=code,
                signal=sig,
                elapsed=_value(elapsed),
                start=_value(start) if _value(nodes) else None,  # Start is set for some jobs that never ran
                end=_value(end),
                node_list=_value(nodes),
                source="sacct",
            )
    return jobs


def parse_comment_rows(stdout: str) -> dict[str, str]:
    """`<job id>|<comment>` rows (sacct -o JobID,Comment -P; squeue -o %i|%k) -> job id -> comment, empty ones left
    out. The comment goes last: a '|' inside it stays in it."""
    out = {}
    for line in stdout.splitlines():
        job_id, _, comment = line.partition("|")
        if job_id.strip() and _value(comment) is not None:
            out[job_id.strip()] = comment.strip()
    return out
