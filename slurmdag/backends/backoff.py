"""slurmctld saying "slow down", in one place: recognised here, waited out here, for both backends.

With `SlurmctldParameters=rl_enable` (Slurm 23.02 and later) slurmctld keeps a token bucket per user (root and
SlurmUser are exempt) and answers an RPC over the limit with SLURMCTLD_COMMUNICATIONS_BACKOFF, errno 1804, "Rate
limit exceeded, please retry momentarily". libslurm answers that itself: it sleeps 1, 2, 3, ... seconds and sends the
RPC again, so `sbatch`, `squeue` and pyslurm calls simply take longer (`sbatch -v` prints "RPC rate limited 1
time(s). Sleeping then trying again"). What does reach a caller is errno 1805, SLURMCTLD_COMMUNICATIONS_HARD_DROP,
"Rate limit exceeded, please retry later" (an RPC queue full, with hard_drop), and 1804 from a client that does not
retry. In every case slurmctld did not process the request: sending it again cannot make a second job.

Measured on Slurm 25.11.7 (rl_enable, a 20-token bucket refilled 10 a second, tests/integration/
test_rate_limit_cluster.py): sbatch's backed-off submissions all went through, but a read sent again after a back-off
(`squeue`: REQUEST_JOB_INFO / REQUEST_PARTITION_INFO) often gets no answer in time: the client ends with "Socket
timed out on send/recv operation" after 20 s while slurmctld logs that the answer it sent later found the socket
gone. So a *read* (squeue, sinfo, sdiag, scontrol show; nothing that changes anything) that ends in a socket timeout
is sent again too, a few times (READ_TIMEOUT_TRIES), before "the controller is not answering" reaches the caller.

So: `is_rate_limited_text` and `RATE_LIMIT_ERRNOS` say what a rate-limit answer looks like (runner and pyslurm
backend), and `retry` sends a rate-limited call again after 1, 2, 4, 8, 16, 16, ... seconds for at most
SLURMDAG_RATE_LIMIT_WAIT seconds (default 300) before the RateLimitedError reaches the caller: a DAG is never
withdrawn, nor a status or reconcile pass failed, because the controller said "slow down".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from slurmdag.model.errors import RateLimitedError, SlurmUnavailableError

T = TypeVar("T")

RATE_LIMIT_ERRNOS = frozenset({1804, 1805})  # SLURMCTLD_COMMUNICATIONS_BACKOFF, SLURMCTLD_COMMUNICATIONS_HARD_DROP
_MARKERS = ("rate limit exceeded",)
WAIT = float(os.environ.get("SLURMDAG_RATE_LIMIT_WAIT", "300"))
FIRST_PAUSE = 1.0
MAX_PAUSE = 16.0
READ_TIMEOUT_TRIES = 3  # extra sends of a read that timed out (each costs the client's own ~20 s at most)
_SOCKET_TIMEOUT = "socket timed out on send/recv"
_READ_COMMANDS = frozenset({"squeue", "sinfo", "sdiag"})


def is_read(argv: list[str]) -> bool:
    """Whether a command (or the command a pyslurm call stands for) only reads: safe to send twice."""
    if not argv:
        return False
    name = os.path.basename(argv[0])
    return name in _READ_COMMANDS or (name == "scontrol" and len(argv) > 1 and argv[1] in ("show", "ping"))


def _timed_out_read(ex: SlurmUnavailableError) -> bool:
    return ex.returncode is not None and is_read(ex.argv) and _SOCKET_TIMEOUT in (ex.stderr + ex.stdout).lower()


def is_rate_limited_text(text: str) -> bool:
    """Whether a Slurm client's output is slurmctld's rate-limit answer."""
    low = text.lower()
    return any(m in low for m in _MARKERS)


def retry(
    call: Callable[[], T],
    *,
    wait: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`call()`, sent again while it raises RateLimitedError, pausing 1, 2, 4, ... 16 s, for at most `wait` s; and
    a read that timed out on its socket, READ_TIMEOUT_TRIES more times."""
    limit = WAIT if wait is None else wait
    pause = FIRST_PAUSE
    deadline: float | None = None
    timeouts = 0
    while True:
        try:
            return call()
        except SlurmUnavailableError as ex:
            timeouts += 1
            if not _timed_out_read(ex) or timeouts > READ_TIMEOUT_TRIES:
                raise
            sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)
        except RateLimitedError:
            now = clock()
            if deadline is None:
                deadline = now + limit
            if now >= deadline:
                raise
            sleep(min(pause, deadline - now))
            pause = min(pause * 2, MAX_PAUSE)
