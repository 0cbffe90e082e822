"""Every error slurmdag reports to a user, as one hierarchy of types that carry what is needed to fix the problem.

    SlurmdagError                       exit 1 unless said otherwise; never shown as a traceback
    ├── InputError                      exit 2: bad workflow or bad usage, every problem at once; nothing submitted
    │   ├── UsageError                  a command called wrongly
    │   │   ├── UnknownDagError
    │   │   ├── NothingToResumeError, DagStillActiveError, ChangedCompletedAllocationsError
    │   └── PreflightError              the DAG cannot run on this cluster as written
    ├── SlurmCommandError               a Slurm command failed (argv, exit code, output)
    │   ├── SlurmUnavailableError       no Slurm clients or configuration, or no controller to talk to
    │   │   └── AccountingUnavailableError   slurmdbd (accounting) does not answer; slurmctld may
    │   ├── JobTableFullError           slurmctld holds MaxJobCount jobs: room frees up as finished ones are purged
    │   └── RateLimitedError            slurmctld said "slow down" (RPC rate limit or queue): retried, then this
    ├── SlurmOutputError                a Slurm command printed something slurmdag cannot read
    ├── BackendUnavailableError         the backend asked for (--backend pyslurm) cannot work here
    ├── SubmitError                     a submission failed part-way (and was withdrawn)
    ├── JobTableNoRoomError             Slurm's job table has no room for the DAG now; nothing was submitted
    ├── InternalError                   slurmdag broke its own contract (a bug to report); nothing was submitted
    ├── CancelError                     Slurm did not confirm a cancellation
    ├── StoreError                      the local DAG store could not be read or written
    │   └── CorruptRecordError          one DAG's dag.json/plan.json is not a record slurmdag can read
    ├── DagNotCompletedError            a followed DAG ended in a state other than Completed
    ├── DagFailedError                  a DAG waited for from Python (`handle.wait()`) did not complete: what failed
    │                                   (with a Python step's remote exception and traceback), completed, cancelled
    ├── ResultNotFoundError             a Python step has no stored return value (not run, raised, or not one)
    ├── LogNotFoundError                an allocation's log file is not there (yet, or any more)
    └── ReconcileFailedError            a reconciler pass could not read Slurm or act

The CLI maps each to its `exit_code`; every name ends in `Error`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

MAX_REPORTED_PROBLEMS = 50
# A problem's message or hint longer than this is cut: user text echoed whole (a 1 MB name) would bury the report.
MAX_MESSAGE_CHARS = 1000
SHOWN_CHARS = 60  # user strings quoted in a message show at most this many characters


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`repr(value)` for a message, cut to about `limit` characters with the full length said."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = (
        repr(value) if not isinstance(value, int) or value.bit_length() < 4000 else f"<{value.bit_length()}-bit number>"
    )
    return text if len(text) <= limit + 2 else f"{text[:limit]}... ({len(text):,} characters)"


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[:MAX_MESSAGE_CHARS]}... ({len(text) - MAX_MESSAGE_CHARS:,} more characters)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, pinned to where it is."""

    message: str
    file: str = "<input>"
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    hint: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", _cut(self.message))
        if self.hint is not None:
            object.__setattr__(self, "hint", _cut(self.hint))
        object.__setattr__(self, "file", _cut(self.file))

    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col or 1}"

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SlurmdagError(Exception):
    """Base of every error slurmdag reports to a user (never shown as a traceback)."""

    exit_code = 1


class InputError(SlurmdagError):
    """Invalid workflow or invalid usage: every problem found, reported together. Nothing was submitted."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        shown = [str(p) for p in self.problems[:MAX_REPORTED_PROBLEMS]]
        hidden = len(self.problems) - len(shown)
        if hidden > 0:
            shown.append(f"... and {hidden} more")
        return "\n".join(shown)


class UsageError(InputError):
    """A command was called wrongly (unknown DAG id, bad option value)."""


class SlurmCommandError(SlurmdagError):
    """A Slurm command failed: carries the command line, exit code and output."""

    def __init__(self, argv: list[str], returncode: int | None, stdout: str = "", stderr: str = "", note: str = ""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).strip() or note or "no output"
        super().__init__(f"`{' '.join(self.argv)}` failed (exit {returncode}): {detail}")


class SlurmUnavailableError(SlurmCommandError):
    """The Slurm commands are missing or unconfigured, or the controller cannot be reached; worth retrying later.

    Its message is one line saying which (`summary`), ending with the client's own key line: a user needs to know
    that Slurm is not there, not every retry the client logged. argv/stdout/stderr keep the whole story.
    """

    def __init__(
        self,
        argv: list[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        note: str = "",
        summary: str = "Slurm cannot be reached",
    ):
        super().__init__(argv, returncode, stdout, stderr, note)
        self.summary = summary
        key = key_line(stderr or stdout) or note
        who = os.path.basename(self.argv[0]) if self.argv else "slurm"
        self.args = (f"{summary} ({who}: {key})" if key else summary,)


class AccountingUnavailableError(SlurmUnavailableError):
    """slurmdbd does not answer (sacct, sacctmgr). slurmctld may be fine: what it still holds can be read."""


class JobTableFullError(SlurmCommandError):
    """slurmctld refused a job because its job table is full (MaxJobCount); finished jobs leave it MinJobAge seconds
    after they end, so waiting helps. Not "unreachable": the controller answered."""

    def __init__(self, argv: list[str], returncode: int | None, stdout: str = "", stderr: str = "", note: str = ""):
        super().__init__(argv, returncode, stdout, stderr, note)
        who = os.path.basename(self.argv[0]) if self.argv else "sbatch"
        self.args = (
            f"Slurm's job table is full (MaxJobCount reached): {who} was told "
            f"'{key_line(stderr or stdout) or note or 'temporarily unable to accept job'}'",
        )


class RateLimitedError(SlurmCommandError):
    """slurmctld answered "Rate limit exceeded" (SlurmctldParameters=rl_enable, or a full RPC queue): it did not
    process the request, so sending it again later is safe. `backends.backoff` retries it for a bounded time; this
    error reaches a caller only when the controller kept saying so all that time."""

    def __init__(self, argv: list[str], returncode: int | None, stdout: str = "", stderr: str = "", note: str = ""):
        super().__init__(argv, returncode, stdout, stderr, note)
        who = os.path.basename(self.argv[0]) if self.argv else "slurm"
        said = key_line(stderr or stdout) or note or "Rate limit exceeded"
        self.args = (f"the Slurm controller kept telling slurmdag to slow down ({who}: {said})",)


# How much of a client's message an error repeats: enough to recognise it, never a flood.
KEY_LINE_MAX = 200


def key_line(text: str) -> str:
    """The line of a Slurm client's output that says what went wrong: the last error/fatal line, else the last line;
    without the "prog: error: " prefix, cut to KEY_LINE_MAX characters."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
    line = (errors or lines)[-1]
    for marker in (": fatal: ", ": error: "):
        if marker in line:
            line = line.split(marker, 1)[1]
            break
    return line if len(line) <= KEY_LINE_MAX else line[: KEY_LINE_MAX - 1] + "…"


class SlurmOutputError(SlurmdagError):
    """A Slurm command printed something slurmdag cannot read (a Slurm version it does not know, or another program
    of that name first on PATH). The parsers raise it without the command; the backend adds which one it was."""

    def __init__(self, detail: str, argv: Sequence[str] | None = None):
        self.detail = detail
        self.argv = list(argv) if argv else None
        # The program's name is enough to say which command; its arguments may list thousands of job ids.
        who = f"`{self.argv[0]}`" if self.argv else "a Slurm command"
        super().__init__(
            f"{who} printed output slurmdag cannot read: {detail}\n"
            "  hint: is a supported Slurm (22.05 or later) first on PATH? `command -v squeue sacct sbatch` shows which"
        )

    def of_command(self, argv: Sequence[str]) -> SlurmOutputError:
        """The same error, naming the command that printed the output."""
        return SlurmOutputError(self.detail, argv)


class BackendUnavailableError(SlurmdagError):
    """The backend asked for cannot talk to this cluster (e.g. pyslurm missing or built for another Slurm)."""


class SubmitError(SlurmdagError):
    """Submitting a DAG failed part-way; everything already submitted has been cancelled."""


class JobTableNoRoomError(SlurmdagError):
    """slurmctld's job table (MaxJobCount) has no room for the DAG now and will not within the wait bound; nothing was
    submitted. A state of the cluster, not of the workflow (exit 1): trying again later can succeed."""


class InternalError(SlurmdagError):
    """slurmdag produced something it must not (e.g. a batch script whose #SBATCH block is not the plan's): a bug
    in slurmdag or in a user-supplied template. Nothing was submitted."""


class StoreError(SlurmdagError):
    """The local DAG store could not be read or written."""


class CorruptRecordError(StoreError):
    """One DAG's record (dag.json or plan.json) is not something slurmdag wrote: damaged, edited, or truncated.
    Only that DAG is affected; `list` shows the others and names this one."""

    def __init__(self, path: object, what: str, dag_id: str | None = None):
        self.path = str(path)
        self.what = what
        self.dag_id = dag_id
        hint = "its jobs in Slurm carry its id in their names"
        if dag_id:
            hint = f"move {os.path.dirname(self.path)} aside and `slurmdag status {dag_id}` rebuilds it from Slurm"
        super().__init__(f"{self.path}: not a readable slurmdag record: {what}\n  hint: {hint}")


class UnknownDagError(UsageError):
    """No such DAG in the local store (and, where looked for, no job of it in Slurm)."""

    def __init__(self, dag_id: str):
        self.dag_id = dag_id
        super().__init__(
            Problem(f"unknown DAG {dag_id!r}", file="slurmdag", hint="`slurmdag list --all` shows your DAGs")
        )


class PreflightError(InputError):
    """The DAG cannot run on this cluster as written; nothing was submitted (exit 2)."""


class NothingToResumeError(UsageError):
    """Every allocation completed (or a redo target set is empty): nothing would be submitted."""


class DagStillActiveError(UsageError):
    """Some job of the DAG is still pending or running: resuming now could run an allocation twice."""


class ChangedCompletedAllocationsError(UsageError):
    """`resume --from FILE` would change what an allocation that already completed is."""


class CancelError(SlurmdagError):
    """Slurm did not confirm the cancellation of some jobs."""


class DagNotCompletedError(SlurmdagError):
    """A followed DAG (`--watch`, `watch`) ended in a state other than Completed (exit 1)."""


class LogNotFoundError(SlurmdagError):
    """An allocation's log file is not there (yet, or any more)."""


class ReconcileFailedError(SlurmdagError):
    """A reconciler pass could not read Slurm or act on it (exit 1); nothing was concluded from it."""


@dataclass(frozen=True)
class StepFailure:
    """One failed allocation of a DAG (one task, for a task group): its state and, for a Python step that raised,
    the remote exception's type, message and formatted traceback (`exception` is the exception object itself when
    it could be pickled in the job and unpickled here; else None)."""

    allocation: str
    state: str  # Failed, Timeout, OutOfMemory, NodeFail
    task: int | None = None
    exception_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    exception: BaseException | None = None

    def describe(self) -> str:
        where = self.allocation if self.task is None else f"{self.allocation}[{self.task}]"
        if self.exception_type is not None:
            return f"{where} raised {self.exception_type}: {self.message}"
        return f"{where} ended {self.state}"


class DagFailedError(SlurmdagError):
    """A DAG waited for from Python (`DagHandle.wait()`) ended other than Completed (TidyRun's error shape).

    `failed`: the failed allocations (StepFailure, per failed task for a task group); `completed`, `cancelled`,
    `skipped`: sets of allocation names; `state`: the DAG's state (Failed, Cancelled, Unknown)."""

    def __init__(
        self,
        dag_id: str,
        state: str,
        failed: Sequence[StepFailure],
        completed: set[str],
        cancelled: set[str],
        skipped: set[str] | None = None,
    ):
        self.dag_id = dag_id
        self.state = state
        self.failed = list(failed)
        self.completed = set(completed)
        self.cancelled = set(cancelled)
        self.skipped = set(skipped or ())
        lines = [f"DAG {dag_id} ended {state}"]
        lines += [f"  failed: {f.describe()}" for f in self.failed[:MAX_REPORTED_PROBLEMS]]
        if len(self.failed) > MAX_REPORTED_PROBLEMS:
            lines.append(f"  ... and {len(self.failed) - MAX_REPORTED_PROBLEMS} more failed")
        for label, names in (("completed", self.completed), ("cancelled", self.cancelled), ("skipped", self.skipped)):
            if names:
                lines.append(_cut(f"  {label}: {', '.join(sorted(names))}"))
        first = next((f for f in self.failed if f.traceback), None)
        if first is not None and first.traceback is not None:
            lines.append(f"remote traceback of {first.allocation}:\n{first.traceback.rstrip()}")
        super().__init__("\n".join(lines))

    @property
    def failed_allocations(self) -> set[str]:
        return {f.allocation for f in self.failed}


class ResultNotFoundError(SlurmdagError):
    """A Python step has no stored return value: it has not finished, it raised, it was cancelled, or it is not a
    Python step of that DAG."""
