"""A DAG's history of attempts (first submit, then each resume/redo), kept in dag.json `attempts`. Pure.

Each attempt is a dict: {"number", "kind" ("submit"|"resume"|"redo"), "created", "gate_job_id",
"job_ids": {name: id}, "subsets": {task group: "7,9"} (only the tasks it re-ran), "decided": {name: why not
submitted}, "submission": "submitting"|"submitted"|"failed", "error"}.
A DAG submitted once has no history: its only attempt is record.job_ids. The newest attempt that ran an allocation (or a
task of a group) is that allocation's (task's) current job; older ones stay only as history.
"""

from __future__ import annotations

from slurmdag.model import slurm_values as wt
from slurmdag.state.store import SUBMITTED, DagRecord, utc_now


def history(record: DagRecord) -> list[dict]:
    """The attempts, the first one built from the record when it has no history yet."""
    if record.attempts:
        return record.attempts
    return [
        {
            "number": 1,
            "kind": "submit",
            "created": record.created,
            "gate_job_id": record.gate_job_id,
            "job_ids": dict(record.job_ids),
            "subsets": {},
            "decided": {},
            "submission": record.submission,
        }
    ]


def count(record: DagRecord) -> int:
    """How many attempts were committed (a resume whose submission was withdrawn does not count)."""
    return len([a for a in history(record) if a.get("submission") != "failed"])


def begin(record: DagRecord, kind: str, subsets: dict[str, str], decided: dict[str, str]) -> dict:
    """Append a new attempt (state "submitting") and return it; its `job_ids` fills as jobs are submitted."""
    if not record.attempts:
        record.attempts = history(record)
    attempt = {
        "number": max(a["number"] for a in record.attempts) + 1,
        "kind": kind,
        "created": utc_now(),
        "gate_job_id": None,
        "job_ids": {},
        "subsets": dict(subsets),
        "decided": dict(decided),
        "submission": "submitting",
    }
    record.attempts.append(attempt)
    return attempt


def committed(record: DagRecord, attempt: dict) -> None:
    """The attempt's gate was released: it becomes the current one."""
    attempt["submission"] = SUBMITTED
    attempt["gate_job_id"] = record.gate_job_id
    record.attempt = attempt["number"]
    record.job_ids = current_job_ids(record)
    record.final_state = None  # the DAG runs again
    record.cancelled_at = None
    record.error = None


def withdrawn(record: DagRecord, attempt: dict, error: str) -> None:
    """The attempt's submission failed and was withdrawn: the record stays as before it."""
    attempt["submission"] = "failed"
    attempt["error"] = error
    attempt["gate_job_id"] = record.gate_job_id
    previous = [a for a in record.attempts if a is not attempt and a.get("submission") != "failed"]
    record.gate_job_id = previous[-1].get("gate_job_id") if previous else None


def _live(record: DagRecord) -> list[dict]:
    """Attempts whose jobs count, oldest first (a withdrawn submission's jobs never ran)."""
    return [a for a in history(record) if a.get("submission") != "failed"]


def current_job_ids(record: DagRecord) -> dict[str, str]:
    """Each allocation's newest job. An allocation an attempt decided not to run keeps its earlier job: that job's
    outcome (never ran, or completed tasks of a group) is still what happened to it, and `status` labels it."""
    out: dict[str, str] = {}
    for attempt in _live(record):
        out.update(attempt.get("job_ids", {}))
    return out


def all_job_ids(record: DagRecord) -> list[str]:
    """Every job id of every attempt (what `status` asks Slurm about)."""
    ids = [j for a in history(record) for j in a.get("job_ids", {}).values()]
    return list(dict.fromkeys([*ids, *record.job_ids.values()]))


def task_sources(record: DagRecord, name: str, indexes: list[int]) -> dict[int, str]:
    """Task index -> the array job id of the newest attempt that ran that task of group `name`."""
    out: dict[int, str] = {}
    wanted = set(indexes)
    for attempt in _live(record):
        job_id = attempt.get("job_ids", {}).get(name)
        if job_id is None:
            continue
        subset = attempt.get("subsets", {}).get(name)
        for i in wt.array_indexes(subset) if subset else wanted:
            out[i] = job_id
    return out


def decided_in_current(record: DagRecord) -> dict[str, str]:
    """Nodes the current attempt did not submit because their dependency could not hold, with the reason."""
    live = _live(record)
    return dict(live[-1].get("decided", {})) if len(live) > 1 else {}
