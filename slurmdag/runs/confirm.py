"""Reading back that Slurm finished what it was asked to cancel: scancel's exit status proves nothing
(slurm-facts §2 #31), so submit's withdraw, `cancel` and `cancel --allocation` all verify through these two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.model.states import slurm_finished


def unfinished(ids: list[str], live: Mapping[str, JobInfo]) -> list[str]:
    """Ids with a task or job that Slurm still lists as not finished (absent ids are gone, hence finished)."""
    left = []
    for job_id in ids:
        rows = [i for i in live.values() if i.array_job_id == job_id or i.job_id == job_id]
        if any(not slurm_finished(i.state) for i in rows):
            left.append(job_id)
    return left


def wait_until_finished(
    backend: Backend,
    ids: list[str],
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Read state back until every id is finished or time is up; return the ids still unfinished."""
    deadline = clock() + timeout
    delay = 0.2
    resent = False
    while True:
        live = backend.query_live(ids)
        left = unfinished(ids, live)
        if not left:
            return []
        if not resent and any(i.state == "PENDING" for i in live.values() if i.array_job_id in left):
            backend.cancel(left)  # a pending job that survived scancel: ask once more
            resent = True
        if clock() >= deadline:
            return left
        sleep(delay)
        delay = min(delay * 1.5, 2.0)
