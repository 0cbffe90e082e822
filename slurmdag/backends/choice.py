"""Which backend talks to Slurm: the CLI (sbatch, squeue, ...) or pyslurm, and why.

pyslurm is never imported into this process before a probe in a child process has imported it: `import pyslurm` calls
`slurm_init()`, which kills the interpreter (no Python exception) when the Slurm config is missing or unreadable. The
probe (run through `runner`, like every other process) also reads the controller's Slurm version: pyslurm talks to
slurmctld through the libslurm it was built against, and each pyslurm release is built for one Slurm release.

`auto` takes pyslurm only when the probe says it works and its version matches the cluster's, else the CLI;
an explicit `pyslurm` that cannot work is a BackendUnavailableError (exit 1).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slurmdag.backends import runner
from slurmdag.backends.base import Backend
from slurmdag.backends.runner import CONTROLLER_DOWN, UNREACHABLE_ERRNOS
from slurmdag.model.errors import BackendUnavailableError, Problem, SlurmCommandError, SlurmUnavailableError, UsageError

CHOICES = ("auto", "cli", "pyslurm")
DEFAULT = "auto"
ENV_VAR = "SLURMDAG_BACKEND"
PROBE_TIMEOUT = 30.0

# The probe program, run by path in a child process.
PROBE = Path(__file__).with_name("pyslurm_probe.py")


@dataclass(frozen=True)
class ProbeResult:
    usable: bool
    reason: str  # one sentence: what was found (said under -v, or in the error for an explicit pyslurm)
    pyslurm_version: str | None = None
    cluster_version: str | None = None
    config: dict[str, Any] | None = None  # what the probe read of the controller's config
    # libslurm's answer when reading the controller failed because nobody answered (the controller is down or
    # unreachable): (errno, message). An explicit `pyslurm` then says so, as the CLI would, not "cannot work here".
    unreachable: tuple[int, str] | None = None


def release(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a Slurm or pyslurm version: "22.05.8" and pyslurm's "22.5.3" are both (22, 5)."""
    m = re.match(r"^\s*(\d+)\.(\d+)", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def judge(returncode: int | None, stdout: str, stderr: str) -> ProbeResult:
    """What a probe run says. Pure (tested with recorded outputs)."""
    last_err = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("{")), None)
    if returncode is None:
        return ProbeResult(
            False, f"the pyslurm probe did not answer within {PROBE_TIMEOUT:g} s ({last_err or 'silent'})"
        )
    if returncode != 0 or line is None:
        how = f"signal {-returncode}" if returncode < 0 else f"exit {returncode}"
        said = f": {last_err}" if last_err else ""
        return ProbeResult(False, f"importing pyslurm killed the probe process ({how}){said}")
    try:
        found = json.loads(line)
    except ValueError:
        return ProbeResult(False, f"the pyslurm probe printed {line[:120]!r}")
    if "missing" in found:
        return ProbeResult(False, f"pyslurm is not installed for {sys.executable} ({found['missing']})")
    version = found.get("pyslurm")
    cluster = found.get("cluster")
    if not cluster:
        why = found.get("cluster_error") or last_err or "no answer"
        errno = found.get("cluster_errno")
        unreachable = (errno, str(found.get("cluster_message") or why)) if errno in UNREACHABLE_ERRNOS else None
        why = f"pyslurm {version} could not read the controller's Slurm version: {why}"
        return ProbeResult(False, why, version, unreachable=unreachable)
    mine, theirs = release(version), release(cluster)
    if mine is None or mine != theirs:
        return ProbeResult(
            False,
            f"pyslurm {version} is for Slurm {_release_text(mine)}, the cluster runs Slurm {cluster}",
            version,
            cluster,
        )
    built = found.get("built_for")
    built_note = f", built against libslurm {built}" if built else ""
    return ProbeResult(
        True,
        f"pyslurm {version}{built_note} matches the cluster's Slurm {cluster}",
        version,
        cluster,
        found.get("config"),
    )


def _release_text(rel: tuple[int, int] | None) -> str:
    return "?" if rel is None else f"{rel[0]}.{rel[1]:02d}"


def probe() -> ProbeResult:
    """Import pyslurm in a child process and ask the controller its version (one RPC)."""
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.exists(conf):  # libslurm would retry reading it for 60 s, then end the process
        return ProbeResult(False, f"SLURM_CONF={conf}: no such file")
    argv = [sys.executable, str(PROBE)]
    try:
        proc = runner.run_slurm(argv, timeout=PROBE_TIMEOUT)
    except SlurmCommandError as ex:
        return judge(ex.returncode, ex.stdout, ex.stderr)
    return judge(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class Choice:
    backend: Backend
    name: str  # "cli" or "pyslurm"
    reason: str  # why, for -v


def choose(requested: str, source: str) -> Choice:
    """The backend for `requested` ("auto", "cli" or "pyslurm"); `source` says where that came from (for -v)."""
    if requested not in CHOICES:
        raise UsageError(Problem(f"unknown backend {requested!r}", file=source, hint=f"choose {', '.join(CHOICES)}"))
    from slurmdag.backends.cli import CliBackend

    if requested == "cli":
        return Choice(CliBackend(), "cli", f"backend cli ({source})")
    if requested == "auto" and not pyslurm_installed():
        return Choice(CliBackend(), "cli", f"backend cli (auto, {source}): pyslurm is not installed")
    result = probe()
    if not result.usable:
        if requested == "pyslurm" and result.unreachable is not None:
            errno, message = result.unreachable
            raise SlurmUnavailableError(
                ["scontrol", "show", "config"],
                errno,
                "",
                f"{message} (pyslurm, errno {errno})",
                summary=CONTROLLER_DOWN,
            )
        if requested == "pyslurm":
            raise BackendUnavailableError(
                f"the pyslurm backend ({source}) cannot work here: {result.reason}\n"
                "  hint: use --backend cli, or build pyslurm for this cluster's Slurm (docs/backends.md)"
            )
        return Choice(CliBackend(), "cli", f"backend cli (auto, {source}): {result.reason}")
    from slurmdag.backends.pyslurm_backend import PyslurmBackend

    return Choice(PyslurmBackend(result.config), "pyslurm", f"backend pyslurm ({requested}, {source}): {result.reason}")


def pyslurm_installed() -> bool:
    """Whether a `pyslurm` package is on the path, found without importing it (finding runs none of its code)."""
    import importlib.util

    try:
        return importlib.util.find_spec("pyslurm") is not None
    except (ImportError, ValueError):
        return False
