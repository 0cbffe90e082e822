"""How many runs an allocation with `retries` needed: its batch script notes each attempt in the job's comment
(`slurmdag:<dag>:<name>:attempt=K/N:exit=RC`, templates/job.sbatch.j2), which Slurm keeps live (squeue %k) and in
accounting (sacct Comment, with AccountingStoreFlags=job_comment). Asked only for DAGs that use `retries`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from slurmdag.backends.base import Backend
from slurmdag.model.errors import SlurmCommandError, SlurmOutputError

_ATTEMPT = re.compile(r":attempt=(\d+)/(\d+):exit=(-?\d+)\s*$")


@dataclass(frozen=True)
class RetryAttempt:
    attempt: int  # the run that last ended (1 = the first run)
    of: int  # 1 + retries
    exit_code: int  # of that run

    def text(self) -> str:
        return f"attempt {self.attempt} of {self.of}"


def parse_comment(comment: str | None) -> RetryAttempt | None:
    m = _ATTEMPT.search(comment or "")
    return RetryAttempt(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def read(backend: Backend, job_ids: Iterable[str], since: datetime) -> dict[str, RetryAttempt]:
    """Attempts noted in the comments of these jobs (accounting, then slurmctld's fresher view); {} if Slurm
    cannot say: the retry column is a detail, never a reason for `status` to fail."""
    try:
        comments = backend.job_comments(job_ids, since)
    except (SlurmCommandError, SlurmOutputError):
        return {}
    found = {job_id: parse_comment(comment) for job_id, comment in comments.items()}
    return {job_id: attempt for job_id, attempt in found.items() if attempt is not None}
