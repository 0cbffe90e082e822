"""The one place a Slurm command is run: argument list in, CompletedProcess out, or a typed error.

Every sbatch/squeue/sacct/scontrol/scancel call in slurmdag goes through `run_slurm`, so timeouts, the
"controller unreachable" diagnosis and the error carrying argv/exit code/stdout/stderr live in one place.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence

from slurmdag.model.errors import SlurmCommandError, SlurmUnavailableError

DEFAULT_TIMEOUT = float(os.environ.get("SLURMDAG_SLURM_TIMEOUT", "60"))

# What the Slurm clients print when there is no controller/database to talk to (retrying later may help).
_UNAVAILABLE_MARKERS = (
    "unable to contact slurm controller",
    "could not establish a configuration source",
    "socket timed out",
    "connection refused",
    "problem talking to the database",
    "slurmdbd: connection",
    "zero bytes were transmitted or received",
)

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
    """
    args = [str(a) for a in argv]
    if command_observer is not None:
        command_observer(args)
    run_env = None if env is None else {**os.environ, **env}
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
            args, None, note=f"{args[0]} not found on PATH: are the Slurm clients installed?"
        ) from ex
    except subprocess.TimeoutExpired as ex:
        raise SlurmUnavailableError(
            args, None, _text(ex.stdout), _text(ex.stderr), note=f"no answer within {ex.timeout:g} s"
        ) from ex
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).lower()
        kind = SlurmUnavailableError if any(m in text for m in _UNAVAILABLE_MARKERS) else SlurmCommandError
        raise kind(args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
