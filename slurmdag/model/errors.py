"""Errors as types that carry what a user needs to fix the problem.

The CLI maps each to an exit code: `InputError` (bad workflow, bad usage) -> 2, everything else -> 1.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPORTED_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, pinned to where it is."""

    message: str
    file: str = "<input>"
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    hint: str | None = None

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
    """The Slurm commands are missing or the controller cannot be reached; worth retrying later."""


class SubmitError(SlurmdagError):
    """Submitting a DAG failed part-way; everything already submitted has been cancelled."""


class StoreError(SlurmdagError):
    """The local DAG store could not be read or written."""
