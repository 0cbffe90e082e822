"""`slurmdag list` filters: by state, by workflow name, by creation time. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slurmdag.model import slurm_values
from slurmdag.model.errors import Problem, UsageError
from slurmdag.model.states import DagState
from slurmdag.state.store import DagRecord

# `list` also shows these, which are not DAG states: a submission in progress, and a record with no known state
LIST_STATES = tuple(s.value for s in DagState) + ("Submitting",)
SINCE_FORMS = (
    'a duration back from now ("2h", "3d", "1d12h", "90m") or a UTC date/time ("2026-11-01", "2026-11-01T09:00")'
)


def parse_states(values: Iterable[str]) -> set[str] | None:
    """--state values (repeatable, comma-separated, any case) -> canonical state names; None if not given."""
    wanted: set[str] = set()
    by_lower = {s.lower(): s for s in LIST_STATES}
    for value in values:
        for word in value.split(","):
            word = word.strip()
            if not word:
                continue
            if word.lower() not in by_lower:
                raise UsageError(
                    Problem(f"unknown state {word!r}", file="--state", hint=f"states: {', '.join(LIST_STATES)}")
                )
            wanted.add(by_lower[word.lower()])
    return wanted or None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    text = text.strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        seconds = slurm_values.parse_walltime(text)
    except ValueError:
        raise UsageError(Problem(f"invalid --since {text!r}", file="--since", hint=f"use {SINCE_FORMS}")) from None
    return now - timedelta(seconds=seconds)


@dataclass(frozen=True)
class RecordFilter:
    name: str | None = None  # a glob (`train-*`), or a substring when it has no wildcard
    since: datetime | None = None

    def __call__(self, record: DagRecord) -> bool:
        if self.name is not None:
            pattern = self.name if any(c in self.name for c in "*?[") else f"*{self.name}*"
            if not fnmatch.fnmatchcase(record.name, pattern):
                return False
        if self.since is not None:
            try:
                if record.created_at() < self.since:
                    return False
            except ValueError:
                return False
        return True

    @property
    def active(self) -> bool:
        return self.name is not None or self.since is not None
