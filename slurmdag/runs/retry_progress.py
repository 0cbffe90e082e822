"""How many runs an allocation with `retries` needed: its batch script notes each attempt in the job's comment
(`slurmdag:<dag>:<name>:attempt=K/N:exit=RC`, templates/job.sbatch.j2), which Slurm keeps live (squeue %k) and in
accounting (sacct Comment, with AccountingStoreFlags=job_comment). Asked only for DAGs that use `retries`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from slurmdag.backends import runner
from slurmdag.model.errors import SlurmCommandError

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


def parse_rows(text: str) -> dict[str, RetryAttempt]:
    """`<job id>|<comment>` lines -> job id -> attempt."""
    out = {}
    for line in text.splitlines():
        job_id, _, comment = line.partition("|")
        found = parse_comment(comment)
        if found is not None:
            out[job_id.strip()] = found
    return out


def read(job_ids: Iterable[str], since: datetime) -> dict[str, RetryAttempt]:
    """Attempts noted in the comments of these jobs: accounting first, then slurmctld's fresher view."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return {}
    from slurmdag.backends.cli import _slurm_time

    out = {}
    try:
        out.update(
            parse_rows(
                runner.run_slurm(
                    [
                        "sacct",
                        "-X",
                        "-n",
                        "-P",
                        "-o",
                        "JobID,Comment",
                        "-S",
                        _slurm_time(since),
                        "-E",
                        "now",
                        "-j",
                        ",".join(ids),
                    ]
                ).stdout
            )
        )
        out.update(
            parse_rows(runner.run_slurm(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%k"]).stdout)
        )
    except SlurmCommandError:
        pass  # all ids purged from slurmctld (squeue exits 1): what accounting said stands
    return out
