"""Walltime, memory and array-index syntax: parse what users write, produce what sbatch expects. Pure."""

from __future__ import annotations

import re

WALLTIME_FORMS = (
    '30 (minutes), "90m", "2h", "1d12h", "1h30m", "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS"'
)

_UNITS = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
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


def format_walltime(seconds: int) -> str:
    """Slurm's `--time` in one canonical form: HH:MM:SS, or D-HH:MM:SS from one day up."""
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if days:
        return f"{days}-{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}"


# --- memory ---

MEMORY_FORMS = 'a number of megabytes or a number with a unit K, M, G or T, e.g. 500M, "4G"'
_MEMORY = re.compile(r"^(\d+)([KMGT])?B?$", re.IGNORECASE)


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


# --- array index expressions ---

ARRAY_FORMS = '"0-99", "1,3,5", "0-15:4" (step), "0-99%20" (at most 20 at once), or a mix like "1-5,10"'
_ARRAY_PART = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")
MAX_ARRAY_INDEX = 4_000_000  # Slurm's hard ceiling for MaxArraySize


def parse_array(text: str) -> tuple[list[range], int | None]:
    """The index ranges and the `%N` throttle of an --array value; raises ValueError."""
    body, throttle = text, None
    if "%" in text:
        body, _, limit = text.partition("%")
        if not limit.isdigit() or int(limit) < 1:
            raise ValueError(f"invalid throttle {'%' + limit!r}: must be %N with N >= 1")
        throttle = int(limit)
    if not body:
        raise ValueError("no indexes before the throttle")
    ranges = []
    for part in body.split(","):
        m = _ARRAY_PART.match(part)
        if not m:
            raise ValueError(f"invalid index range {part!r}")
        lo, hi, step = int(m.group(1)), m.group(2), m.group(3)
        if hi is None:
            ranges.append(range(lo, lo + 1))
            continue
        hi_i, step_i = int(hi), int(step or 1)
        if hi_i < lo:
            raise ValueError(f"range {part!r} ends before it starts")
        if step_i < 1:
            raise ValueError(f"step in {part!r} must be at least 1")
        ranges.append(range(lo, hi_i + 1, step_i))
    if max(r[-1] for r in ranges) >= MAX_ARRAY_INDEX:
        raise ValueError(f"array index above Slurm's maximum of {MAX_ARRAY_INDEX - 1}")
    return ranges, throttle


def array_indexes(ranges: list[range]) -> frozenset[int]:
    return frozenset(i for r in ranges for i in r)
