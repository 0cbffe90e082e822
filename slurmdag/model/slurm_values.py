"""Slurm's value syntax, in one place: walltime (`--time`), memory (`--mem`) and array index lists (`--array`).

Each value is parsed once where it enters slurmdag (the workflow, a `script:`'s #SBATCH block, Slurm's own output)
into a typed value (seconds, megabytes, index lists) and formatted to Slurm's text only where it leaves it (a
rendered #SBATCH line, an sbatch argument). Nothing else in slurmdag reads or writes these forms. Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

WALLTIME_FORMS = (
    '30 (minutes), "90m", "2h", "1d12h", "1h30m", "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS"'
)

_UNITS = re.compile(r"\A(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_CLOCK = re.compile(r"\A(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\Z")
# Slurm itself caps time limits far below this; the cap just keeps absurd values out of the scripts.
MAX_SECONDS = 365 * 86400


def parse_walltime(value: object) -> int:
    """Seconds for a walltime; raises ValueError with a user-facing reason."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("walltime must be a number of minutes or a string")
    if isinstance(value, int):
        seconds = value * 60
    else:
        text = value.strip().lower()
        seconds = _parse_text(text)
    if seconds <= 0:
        raise ValueError("walltime must be longer than zero")
    if seconds > MAX_SECONDS:
        raise ValueError("walltime is longer than a year")
    return seconds


def _parse_text(text: str) -> int:
    if not text:
        raise ValueError("walltime is empty")
    m = _CLOCK.match(text)
    if m:
        days, a, b, c = m.groups()
        if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
            h, mi, s = int(a), int(b or 0), int(c or 0)
            _check_clock(mi, s, h)
            return int(days) * 86400 + h * 3600 + mi * 60 + s
        if c is not None:  # HH:MM:SS
            h, mi, s = int(a), int(b), int(c)
            _check_clock(mi, s)
            return h * 3600 + mi * 60 + s
        if b is not None:  # MM:SS
            mi, s = int(a), int(b)
            _check_clock(0, s)
            return mi * 60 + s
        return int(a) * 60  # MM
    m = _UNITS.match(text)
    if m and any(m.groups()):
        d, h, mi, s = (int(g or 0) for g in m.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    raise ValueError("not one of the accepted forms")


def _check_clock(minutes: int, seconds: int, hours: int | None = None) -> None:
    if minutes > 59 or seconds > 59 or (hours is not None and hours > 23):
        raise ValueError("walltime fields out of range (hours 0-23 after a day count, minutes and seconds 0-59)")


# A walltime of 0 seconds is Slurm's own "no time limit" (sbatch --time=0, UNLIMITED, INFINITE). A workflow's
# `walltime` must be finite; only a `script:`'s #SBATCH --time can ask for it.
UNLIMITED = 0
_UNLIMITED_SPELLINGS = frozenset({"UNLIMITED", "INFINITE", "-1", "0"})


def parse_time_option(text: str) -> int:
    """Seconds of a `--time` value as sbatch reads it from a batch script; UNLIMITED (0) for no limit."""
    if text.strip().upper() in _UNLIMITED_SPELLINGS:
        return UNLIMITED
    return parse_walltime(text)


def walltime_exceeds(walltime: int, limit: int) -> bool:
    """Whether a job's walltime (UNLIMITED included) is longer than a finite limit."""
    return walltime == UNLIMITED or walltime > limit


# What Slurm prints for "no limit" (scontrol's MaxTime=UNLIMITED, DefaultTime=NONE, ...).
_NO_LIMIT = frozenset({"UNLIMITED", "INFINITE", "NONE", "N/A", "-1", ""})


def parse_slurm_time(text: str | None) -> int | None:
    """Seconds of a time limit as Slurm prints it ("1-00:00:00", "30"); None for no limit or an unreadable one."""
    if text is None or text.strip().upper() in _NO_LIMIT:
        return None
    try:
        return parse_walltime(text)
    except ValueError:
        return None


def format_walltime(seconds: int) -> str:
    """Slurm's `--time` in one canonical form: HH:MM:SS, or D-HH:MM:SS from one day up (UNLIMITED for 0)."""
    if seconds == UNLIMITED:
        return "UNLIMITED"
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if days:
        return f"{days}-{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}"


# --- memory ---

MEMORY_FORMS = 'a number of megabytes or a number with a unit K, M, G or T, e.g. 500M, "4G"'
_MEMORY = re.compile(r"\A(\d+)([KMGT])?B?\Z", re.IGNORECASE)


def parse_memory(value: object) -> str:
    """Slurm's `--mem` value ("4G", "500M", plain megabytes); raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError('memory must be a number of megabytes or a string like "4G"')
    text = str(value).strip()
    m = _MEMORY.match(text)
    if not m:
        raise ValueError(f"invalid memory size {text!r}")
    number, unit = m.groups()
    if int(number) == 0:
        raise ValueError("memory must be larger than zero")  # --mem=0 means "all memory of the node" to Slurm
    return f"{int(number)}{(unit or 'M').upper()}"


_MEMORY_FACTOR_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def memory_mb(text: str | None) -> int | None:
    """Megabytes of a `--mem`-style value ("4G" -> 4096, "500" -> 500, rounded up); None if it is not a size."""
    m = _MEMORY.match(str(text or "").strip())
    if not m:
        return None
    return math.ceil(int(m.group(1)) * _MEMORY_FACTOR_MB[(m.group(2) or "M").upper()])


# --- array index expressions ---

ARRAY_FORMS = '"0-99", "1,3,5", "0-15:4" (step), "0-99%20" (at most 20 at once), or a mix like "1-5,10"'
_ARRAY_PART = re.compile(r"\A(\d+)(?:-(\d+)(?::(\d+))?)?\Z")
MAX_ARRAY_INDEX = 4_000_000  # Slurm's hard ceiling for MaxArraySize


@dataclass(frozen=True)
class ArraySpec:
    """An --array value: its task indexes (sorted, each once) and its `%N` throttle (None: no throttle)."""

    indexes: tuple[int, ...]
    throttle: int | None = None

    def __str__(self) -> str:
        return format_array(self.indexes, self.throttle)


def _array_ranges(text: str) -> tuple[list[range], int | None]:
    """The index ranges and throttle of an --array value, checked but not expanded; raises ValueError."""
    body, throttle = text, None
    if "%" in text:
        body, _, limit = text.partition("%")
        if not limit.isdigit() or int(limit) < 1:
            raise ValueError(f"invalid throttle {'%' + limit!r}: must be %N with N >= 1")
        throttle = int(limit)
    if not body:
        raise ValueError("no indexes before the throttle")
    ranges: list[range] = []
    for part in body.split(","):
        m = _ARRAY_PART.match(part)
        if not m:
            raise ValueError(f"invalid index range {part!r}")
        lo, hi, step = int(m.group(1)), m.group(2), m.group(3)
        if hi is None:
            hi_i, step_i = lo, 1
        else:
            hi_i, step_i = int(hi), int(step or 1)
            if hi_i < lo:
                raise ValueError(f"range {part!r} ends before it starts")
            if step_i < 1:
                raise ValueError(f"step in {part!r} must be at least 1")
        if lo + (hi_i - lo) // step_i * step_i >= MAX_ARRAY_INDEX:  # the range's last index
            raise ValueError(f"array index above Slurm's maximum of {MAX_ARRAY_INDEX - 1}")
        ranges.append(range(lo, hi_i + 1, step_i))
    return ranges, throttle


def array_size(text: str) -> int:
    """How many task indexes an --array value names (repeats counted), without listing them; raises ValueError."""
    return sum(len(r) for r in _array_ranges(text)[0])


def parse_array(text: str) -> ArraySpec:
    """An --array value as written by a user or printed by Slurm ("0-3,7,10-14:2%4"); raises ValueError."""
    ranges, throttle = _array_ranges(text)
    # distinct indexes are below MAX_ARRAY_INDEX; more than that many in all means ranges repeated to make work
    if sum(len(r) for r in ranges) > MAX_ARRAY_INDEX:
        raise ValueError(f"more than {MAX_ARRAY_INDEX:,} indexes, repeats counted")
    indexes: set[int] = set()
    for r in ranges:
        indexes.update(r)
    return ArraySpec(tuple(sorted(indexes)), throttle)


def array_indexes(text: str) -> list[int]:
    """The task indexes of an --array value, ascending; raises ValueError."""
    return list(parse_array(text).indexes)


def format_array(indexes: Iterable[int], throttle: int | None = None) -> str:
    """Task indexes (any order, repeats ignored) -> Slurm's shortest range list, e.g. [0,1,2,5,7,8] -> "0-2,5,7-8"."""
    parts: list[str] = []
    start = prev = -2
    for i in sorted(set(indexes)):
        if i == prev + 1:
            prev = i
            continue
        if start >= 0:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start >= 0:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts) + (f"%{throttle}" if throttle else "")


def with_throttle(array: str, limit: int) -> str:
    """The --array value with its throttle lowered to `limit` (a lower throttle of its own is kept)."""
    spec = parse_array(array)
    body = array.partition("%")[0]  # the indexes as written: a step form stays readable
    return f"{body}%{min(spec.throttle or limit, limit)}"
