"""slurmdag's sbatch option table against `sbatch` itself: every name, alias, argument kind and abbreviation.

sbatch reads its options (and `#SBATCH` lines) with glibc's getopt_long, whose messages name the option it resolved
(`option '--partition' requires an argument`), say when an abbreviation is ambiguous, or that a name is unknown. These
probes never submit anything: sbatch stops at the option error, or on an empty script read from /dev/null.
"""

from __future__ import annotations

import re
import string
import subprocess

import pytest

from slurmdag.model.sbatch_options import ALIASES, BY_SHORT, OPTIONS, lookup_long

pytestmark = pytest.mark.integration

OURS = {o.long: o.arg for o in OPTIONS} | {a: next(o.arg for o in OPTIONS if o.long == c) for a, c in ALIASES.items()}


def first_line(slurm, *argv: str) -> str:
    r = subprocess.run(
        ["sbatch", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, env=slurm.env()
    )
    return (r.stderr.strip() or r.stdout.strip()).splitlines()[0] if (r.stderr.strip() or r.stdout.strip()) else ""


def sbatch_view(slurm, written: str) -> tuple[str, str | None]:
    """("required"|"none"|"optional", full name or None) | ("ambiguous", None) | ("unknown", None)."""
    line = first_line(slurm, f"--{written}")
    if "is ambiguous" in line:
        return "ambiguous", None
    if "unrecognized option" in line:
        return "unknown", None
    m = re.search(r"option '--([a-z-]+)' requires an argument", line)
    if m:
        return "required", m.group(1)
    line = first_line(slurm, f"--{written}=x")
    if "is ambiguous" in line:
        return "ambiguous", None
    m = re.search(r"option '--([a-z-]+)' doesn't allow an argument", line)
    if m:
        return "none", m.group(1)
    return "optional", None


def test_the_table_has_every_long_option_sbatch_has(slurm):
    # `--a` is ambiguous and lists every option starting with "a" (a name alone under its letter resolves instead)
    theirs: set[str] = set()
    for letter in string.ascii_lowercase:
        line = first_line(slurm, f"--{letter}")
        theirs |= set(re.findall(r"'--([a-z][a-z-]+)'", line))
        m = re.search(r"option '--([a-z-]+)' requires an argument", line)
        if m:
            theirs.add(m.group(1))
    assert theirs == set(OURS), f"only sbatch: {theirs - set(OURS)}; only ours: {set(OURS) - theirs}"


def test_every_name_takes_the_argument_sbatch_expects(slurm):
    wrong = {}
    for name, arg in OURS.items():
        kind, full = sbatch_view(slurm, name)
        if kind != arg or (full is not None and full != name):
            wrong[name] = (arg, kind, full)
    assert not wrong


def test_every_abbreviation_resolves_as_sbatch_resolves_it(slurm):
    prefixes = {name[:k] for name in OURS for k in range(1, len(name) + 1)}
    prefixes |= {"DEPENDENCY", "Partition", "workdir", "cluster", "clust", "tasks", "nodesx"}
    wrong = {}
    for p in sorted(prefixes):
        ours = lookup_long(p)
        kind, full = sbatch_view(slurm, p)
        if ours.option is None:
            expected_kind = ours.how  # "ambiguous" | "unknown"
            if kind != expected_kind:
                wrong[p] = (ours.how, kind, full)
            continue
        # sbatch names the entry it matched: an alias by its own name (--tasks-per-node), which means our option
        same = full is None or full == ours.option.long or ALIASES.get(full) == ours.option.long
        if kind != ours.option.arg or not same:
            wrong[p] = (ours.option.long, kind, full)
    assert not wrong, wrong


def test_short_letters_match(slurm):
    wrong = {}
    for letter in string.ascii_letters:
        line = first_line(slurm, f"-{letter}")
        if "invalid option" in line:
            kind = "unknown"
        elif "requires an argument" in line:
            kind = "required"
        else:
            kind = "flag"  # none or optional: sbatch went on (to an empty script, --help, --version)
        ours = BY_SHORT.get(letter)
        expected = "unknown" if ours is None else ("required" if ours.arg == "required" else "flag")
        if kind != expected:
            wrong[letter] = (expected, kind)
    assert not wrong
