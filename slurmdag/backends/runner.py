"""The one place a Slurm command is run: argument list in, CompletedProcess out, or a typed error.

Every sbatch/squeue/sacct/scontrol/scancel call in slurmdag goes through `run_slurm`, so timeouts, the
"controller unreachable" diagnosis and the error carrying argv/exit code/stdout/stderr live in one place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

from slurmdag.backends import backoff
from slurmdag.model.errors import (
    AccountingUnavailableError,
    JobTableFullError,
    RateLimitedError,
    SlurmCommandError,
    SlurmUnavailableError,
)

DEFAULT_TIMEOUT = float(os.environ.get("SLURMDAG_SLURM_TIMEOUT", "60"))

# What the Slurm clients print in each case where trying again later may help; checked in this order (sacct's
# "Connection refused" is about slurmdbd, squeue's about slurmctld).
_UNCONFIGURED_MARKERS = (
    "could not establish a configuration source",
    "unable to process configuration file",
    "s_p_parse_file: cannot stat file",
)
_ACCOUNTING_MARKERS = (
    "problem talking to the database",
    "slurmdbd: connection",
    "failed to open persistent connection",
)
CONTROLLER_DOWN = "the Slurm controller (slurmctld) is not answering"
# The same through libslurm (pyslurm, and the pyslurm probe): error numbers that mean nobody answered
# (slurm_errno.h: communication and socket errors), worth retrying like "Unable to contact slurm controller".
UNREACHABLE_ERRNOS = frozenset(
    {1001, 1002, 1003, 1004, 1013, 1800, 1801, 1802, 1803, 5000, 5001, 5002, 5003, 5004, 5005}
)
_CONTROLLER_MARKERS = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "zero bytes were transmitted or received",
)
# sbatch's own retry loop when slurmctld's job table is full (MaxJobCount; slurmctld logs "MaxJobCount limit from
# slurm.conf reached"): "Slurm temporarily unable to accept job, sleeping and retrying" (EAGAIN) or "Slurm job queue
# full, sleeping and retrying". The controller answered: it is not unreachable.
_TABLE_FULL_MARKERS = ("temporarily unable to accept job", "job queue full")
# The programs whose failure to start means "Slurm is not usable here" (the runner also runs test stand-ins).
SLURM_CLIENTS = frozenset({"sbatch", "squeue", "sacct", "scontrol", "scancel", "sacctmgr", "sinfo", "sdiag"})

# Test hook: called with each argv just before it runs (used to count controller calls). None in production.
command_observer: Callable[[list[str]], None] | None = None


def run_slurm(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one Slurm command; return it if it exited 0, else raise SlurmCommandError (or SlurmUnavailableError).

    The child gets its own session so a Ctrl-C at the terminal reaches slurmdag (which decides what to do, e.g.
    clean up a half-done submission) instead of killing an sbatch half-way through its RPC.

    slurmctld's "Rate limit exceeded" is waited out here (`backoff.retry`), for every command alike.
    """
    return backoff.retry(lambda: _run_once(argv, stdin, timeout, env))


def _run_once(
    argv: Sequence[str], stdin: str | None, timeout: float | None, env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[str]:
    args = [str(a) for a in argv]
    if command_observer is not None:
        command_observer(args)
    run_env = None if env is None else {**os.environ, **env}
    _check_configured(args, run_env if run_env is not None else os.environ)
    try:
        proc = subprocess.run(
            args,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout or DEFAULT_TIMEOUT,
            env=run_env,
            start_new_session=True,
            check=False,
        )
    except FileNotFoundError as ex:
        raise SlurmUnavailableError(
            args,
            None,
            note=f"{args[0]} not found on PATH",
            summary="the Slurm commands are not installed here (or not on PATH)",
        ) from ex
    except OSError as ex:  # PermissionError (not executable), ENOEXEC (not a program), ...
        raise SlurmUnavailableError(
            args,
            None,
            note=f"{shutil.which(args[0], mode=os.F_OK) or args[0]}: {ex.strerror or ex}",
            summary=f"the Slurm command `{args[0]}` on PATH cannot be run",
        ) from ex
    except subprocess.TimeoutExpired as ex:
        out, err = _text(ex.stdout), _text(ex.stderr)
        raise classify(args, None, out, err, timed_out=ex.timeout) from ex
    if proc.returncode != 0:
        raise classify(args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def classify(
    args: list[str], returncode: int | None, stdout: str, stderr: str, timed_out: float | None = None
) -> SlurmCommandError:
    """The typed error for a failed (or timed-out) Slurm command, from what it printed."""
    text = (stderr + stdout).lower()
    note = f"no answer within {timed_out:g} s" if timed_out is not None else ""
    if returncode is not None and backoff.is_rate_limited_text(text):
        return RateLimitedError(args, returncode, stdout, stderr, note)
    if any(m in text for m in _TABLE_FULL_MARKERS):
        return JobTableFullError(args, returncode, stdout, stderr, note)
    if any(m in text for m in _UNCONFIGURED_MARKERS):
        conf = os.environ.get("SLURM_CONF")
        where = f" (SLURM_CONF={conf})" if conf else ""
        return SlurmUnavailableError(
            args, returncode, stdout, stderr, note, summary=f"Slurm is not configured on this machine{where}"
        )
    if any(m in text for m in _ACCOUNTING_MARKERS):
        return AccountingUnavailableError(
            args, returncode, stdout, stderr, note, summary="Slurm's accounting daemon (slurmdbd) is not answering"
        )
    if any(m in text for m in _CONTROLLER_MARKERS):
        return SlurmUnavailableError(args, returncode, stdout, stderr, note, summary=CONTROLLER_DOWN)
    if timed_out is not None:
        return SlurmUnavailableError(
            args, returncode, stdout, stderr, note, summary=f"Slurm did not answer within {timed_out:g} s"
        )
    return SlurmCommandError(args, returncode, stdout, stderr)


def _check_configured(args: list[str], env: Mapping[str, str]) -> None:
    """A SLURM_CONF naming no file: say so at once (the clients retry for 60 s before they give up)."""
    conf = env.get("SLURM_CONF")
    if conf and os.path.basename(args[0]) in SLURM_CLIENTS and not os.path.exists(conf):
        raise SlurmUnavailableError(
            args,
            None,
            note=f"SLURM_CONF={conf}: no such file",
            summary="Slurm is not configured on this machine",
        )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
