"""The sbatch option table of Slurm 22.05, and option names resolved the way sbatch resolves them.

The table is what `sbatch` 22.05.8 itself accepts, read from the running binary (every long name, whether it takes a
value, every short letter; `tests/integration/test_sbatch_options_cluster.py` checks it against `sbatch` on the test
cluster) and cross-checked with Slurm's `src/common/slurm_opt.c`. It is used to read `#SBATCH` lines, `sbatch`
command lines (the importer) and a workflow's `sbatch:` flags the way sbatch's getopt_long (glibc) does:

- an exact name wins, aliases included (`--cluster` is sbatch's alias of `--clusters`, `--tasks-per-node` of
  `--ntasks-per-node`);
- otherwise a prefix is accepted when every option it starts is the same option (glibc's rule: same argument kind and
  same meaning), so `--part` is `--partition` and `--tasks` is `--tasks-per-node`, while `--clust` is ambiguous
  (`--cluster`, `--clusters`, `--cluster-constraint`);
- names are case-sensitive: `--DEPENDENCY` is not an option.

Options slurmdag owns, and what happens when a user's batch script or bash chain carries one:

- `dependency`, `hold`, `parsable`, `kill-on-invalid-dep`, `wrap`: slurmdag sets these itself to build and submit
  the graph. Found in a script used as `script:` they are errors (express edges with `depends_on`). The importer
  turns `--dependency` into `depends_on`, `--wrap` into `entrypoint:` and drops the others with a warning.
- `array`: maps to the allocation's task group (`array:`); the workflow's `tasks`/`array`/`matrix` win over it.
- `job-name`: slurmdag names every job after its DAG and allocation (that is how it finds its jobs). A script's own
  name is kept as information (the importer uses it as the allocation name) but never applied.

`--comment` is the user's: a script's `#SBATCH --comment` or an `sbatch:` one is applied as written (site tools read
it, e.g. NERSC's variable-time jobs take the total time from it). slurmdag labels a job's comment
(`slurmdag:<dag>:<allocation>`) only when the user gave none; it finds its jobs by name.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Arg = Literal["none", "required", "optional"]


@dataclass(frozen=True)
class SbatchOption:
    long: str  # without the leading "--"
    short: str | None  # single letter, without "-"
    arg: Arg  # "optional": only `--long=value` / `-kvalue` carry it (getopt's rule)


def _o(long: str, short: str | None = None, arg: Arg = "required") -> SbatchOption:
    return SbatchOption(long, short, arg)


# Every option sbatch 22.05.8 accepts (aliases below), as its getopt table has them.
OPTIONS: tuple[SbatchOption, ...] = (
    _o("account", "A"),
    _o("acctg-freq"),
    _o("array", "a"),
    _o("batch"),
    _o("bb"),
    _o("bbf"),
    _o("begin", "b"),
    _o("chdir", "D"),
    _o("cluster-constraint"),
    _o("clusters", "M"),
    _o("comment"),
    _o("constraint", "C"),
    _o("container"),
    _o("context"),
    _o("contiguous", arg="none"),
    _o("core-spec", "S"),
    _o("cores-per-socket"),
    _o("cpu-freq"),
    _o("cpus-per-gpu"),
    _o("cpus-per-task", "c"),
    _o("deadline"),
    _o("delay-boot"),
    _o("dependency", "d"),
    _o("distribution", "m"),
    _o("error", "e"),
    _o("exclude", "x"),
    _o("exclusive", arg="optional"),
    _o("export"),
    _o("export-file"),
    _o("extra-node-info", "B"),
    _o("get-user-env", arg="optional"),
    _o("gid"),
    _o("gpu-bind"),
    _o("gpu-freq"),
    _o("gpus", "G"),
    _o("gpus-per-node"),
    _o("gpus-per-socket"),
    _o("gpus-per-task"),
    _o("gres"),
    _o("gres-flags"),
    _o("help", "h", "none"),
    _o("hint"),
    _o("hold", "H", "none"),
    _o("ignore-pbs", arg="none"),
    _o("input", "i"),
    _o("job-name", "J"),
    _o("kill-on-invalid-dep"),
    _o("licenses", "L"),
    _o("mail-type"),
    _o("mail-user"),
    _o("mcs-label"),
    _o("mem"),
    _o("mem-bind"),
    _o("mem-per-cpu"),
    _o("mem-per-gpu"),
    _o("mincpus"),
    _o("network"),
    _o("nice", arg="optional"),
    _o("no-kill", "k", "optional"),
    _o("no-requeue", arg="none"),
    _o("nodefile", "F"),
    _o("nodelist", "w"),
    _o("nodes", "N"),
    _o("ntasks", "n"),
    _o("ntasks-per-core"),
    _o("ntasks-per-gpu"),
    _o("ntasks-per-node"),
    _o("ntasks-per-socket"),
    _o("ntasks-per-tres"),
    _o("open-mode"),
    _o("output", "o"),
    _o("overcommit", "O", "none"),
    _o("oversubscribe", "s", "none"),
    _o("parsable", arg="none"),
    _o("partition", "p"),
    _o("power"),
    _o("prefer"),
    _o("priority"),
    _o("profile"),
    _o("propagate", arg="optional"),
    _o("qos", "q"),
    _o("quiet", "Q", "none"),
    _o("reboot", arg="none"),
    _o("requeue", arg="none"),
    _o("reservation"),
    _o("signal"),
    _o("sockets-per-node"),
    _o("spread-job", arg="none"),
    _o("switches"),
    _o("test-only", arg="none"),
    _o("thread-spec"),
    _o("threads-per-core"),
    _o("time", "t"),
    _o("time-min"),
    _o("tmp"),
    _o("uid"),
    _o("usage", arg="none"),
    _o("use-min-nodes", arg="none"),
    _o("verbose", "v", "none"),
    _o("version", "V", "none"),
    _o("wait", "W", "none"),
    _o("wait-all-nodes"),
    _o("wckey"),
    _o("wrap"),
)

BY_LONG: dict[str, SbatchOption] = {o.long: o for o in OPTIONS}
BY_SHORT: dict[str, SbatchOption] = {o.short: o for o in OPTIONS if o.short}

# Other names sbatch 22.05 accepts for an option (entries of its getopt table; slurm_opt.c), mapped to the name
# slurmdag writes. (`--workdir` is not one: 22.05 dropped it, sbatch says "unrecognized option".)
ALIASES: dict[str, str] = {
    "cluster": "clusters",
    "tasks-per-node": "ntasks-per-node",
}

# Every name getopt matches against, in one list: (name as written in sbatch's table, the option it means).
_NAMES: tuple[tuple[str, SbatchOption], ...] = tuple(
    sorted([(o.long, o) for o in OPTIONS] + [(a, BY_LONG[c]) for a, c in ALIASES.items()])
)

# Owned by slurmdag: the submission machinery sets them (see the module docstring for the policy).
OWNED: frozenset[str] = frozenset(
    {"dependency", "job-name", "array", "hold", "parsable", "kill-on-invalid-dep", "wrap"}
)
# Owned options that a script may carry and that slurmdag maps instead of refusing.
MAPPED_OWNED: frozenset[str] = frozenset({"array", "job-name"})
# What a script's own owned directive leads to: "error" (slurmdag cannot honour it) or "note" (reported, then
# mapped or not applied), and the hint shown with it.
OWNED_POLICY: dict[str, tuple[str, str]] = {
    "dependency": ("error", "express edges with depends_on / depends_on_any in the workflow"),
    "hold": ("error", "slurmdag submits every job held and releases the DAG itself; remove it"),
    "wrap": ("error", "a batch script cannot also --wrap; use entrypoint: instead of script:"),
    "parsable": ("note", "only changes sbatch's output; slurmdag always uses it"),
    "kill-on-invalid-dep": ("note", "slurmdag sets --kill-on-invalid-dep=yes on every dependent job"),
    "job-name": ("note", "kept as information; slurmdag names jobs after the DAG and allocation"),
    "array": ("note", "becomes the allocation's task group; tasks/array/matrix in the workflow win"),
}

# Options that change how the sbatch *command* behaves (or how it reads the script), not the job: meaningless in a
# workflow, and `--wait`/`--test-only` would hang or break submit.
CLIENT_ONLY: frozenset[str] = frozenset(
    {"help", "usage", "version", "quiet", "verbose", "test-only", "wait", "ignore-pbs"}
)


@dataclass(frozen=True)
class LongLookup:
    """What `--name` means to sbatch: one option (exactly, by an alias, or by a unique prefix), or nothing."""

    written: str
    option: SbatchOption | None  # the option (an alias resolved to the name slurmdag writes)
    how: Literal["exact", "alias", "prefix", "ambiguous", "unknown"]
    candidates: tuple[str, ...] = ()  # for "ambiguous": the names it could be, as sbatch lists them

    def describe(self) -> str:
        """A problem with the name, in words (empty when it resolves)."""
        if self.how == "ambiguous":
            return f"ambiguous sbatch option --{self.written}: it could be --" + ", --".join(self.candidates)
        if self.how == "unknown":
            return f"unknown sbatch option --{self.written}"
        return ""


def lookup_long(name: str) -> LongLookup:
    """Resolve `--name` exactly as sbatch 22.05's getopt_long does (see the module docstring)."""
    if name in BY_LONG:
        return LongLookup(name, BY_LONG[name], "exact")
    if name in ALIASES:
        return LongLookup(name, BY_LONG[ALIASES[name]], "alias")
    hits = [(n, o) for n, o in _NAMES if name and n.startswith(name)]
    if not hits:
        return LongLookup(name, None, "unknown")
    first = hits[0][1]
    if all(o == first for _, o in hits):
        return LongLookup(name, first, "prefix")
    return LongLookup(name, None, "ambiguous", tuple(n for n, _ in hits))


def resolve_long(name: str) -> SbatchOption | None:
    """The option a `--name` means: an exact name, an alias, or an unambiguous prefix (None otherwise)."""
    return lookup_long(name).option


def candidates(name: str) -> list[str]:
    """Long names `name` could abbreviate (for an 'ambiguous option' message)."""
    return list(lookup_long(name).candidates)


# Options of the newer sbatch versions slurmdag is tested with (24.11, 25.11, 26.05; docker-slurm SLURM_VERSION) that
# 22.05 lacks, with their argument kind, from each version's src/common/slurm_opt.c and `sbatch --help`. They are
# read only by their exact name (22.05's getopt would not know them) and passed on; whether the cluster's sbatch
# knows them is checked against its own `sbatch --help` by validate and by pre-flight.
NEWER_OPTIONS: dict[str, tuple[str, Arg]] = {
    "container-id": ("24.11", "required"),
    "oom-kill-step": ("24.11", "optional"),
    "resv-ports": ("24.11", "optional"),
    "tres-bind": ("24.11", "required"),
    "tres-per-task": ("24.11", "required"),
    "spread-segments": ("25.11", "none"),
    "container-type": ("26.05", "required"),
}


# Names older sbatch versions had, and what 22.05 calls them.
RENAMED: dict[str, str] = {"workdir": "chdir"}


def near_miss(name: str) -> str | None:
    """A standard option `name` was probably meant to be (`--DEPENDENCY`, `--partiton`, `--workdir`), for a hint."""
    lowered = name.lower()
    if lowered in RENAMED:
        return RENAMED[lowered]
    if lowered != name:
        folded = lookup_long(lowered)
        if folded.option is not None:
            return folded.option.long
    close = difflib.get_close_matches(lowered, [n for n, _ in _NAMES], n=1, cutoff=0.85)
    return BY_LONG[ALIASES.get(close[0], close[0])].long if close else None


def is_owned(long: str) -> bool:
    return long in OWNED


@dataclass(frozen=True)
class FlagProblem:
    message: str
    hint: str
    fatal: bool = True  # False: an option sbatch 22.05 lacks, kept for a site plugin (pre-flight checks it)


OWNED_HINT = (
    "slurmdag sets " + ", ".join(f"--{o}" for o in sorted(OWNED)) + " itself; use depends_on / tasks / array instead"
)
_CLIENT_HINT = {
    "wait": "remove it; `slurmdag submit --watch` (or `slurmdag watch`) follows a DAG until it ends",
    "test-only": "remove it; `slurmdag submit --dry-run` shows what would be submitted",
}


def check_long_flag(written: str, value: str | None) -> tuple[SbatchOption | None, FlagProblem | None]:
    """A workflow's `--written[=value]` flag read the way sbatch will read it: the option it means, and what is wrong
    with it for slurmdag (owned, client-only, ambiguous, unknown, a value where none is taken or none where one is)."""
    found = lookup_long(written)
    opt = found.option
    if opt is None:
        if found.how == "ambiguous":
            return None, FlagProblem(found.describe(), "write the option's full name")
        meant = near_miss(written)
        if meant is not None:
            return None, FlagProblem(
                found.describe(), f"did you mean --{meant}? (sbatch's option names are case-sensitive)"
            )
        return None, FlagProblem(
            f"--{written} is not an sbatch 22.05 option",
            "kept as a site plugin's option: submit checks it against the cluster's `sbatch --help`",
            fatal=False,
        )
    shown = f"--{written}" if written == opt.long else f"--{written} (--{opt.long})"
    if opt.long in OWNED:
        return opt, FlagProblem(
            f"sbatch flag --{opt.long} is set by slurmdag and cannot be given in `sbatch`", OWNED_HINT
        )
    if opt.long in CLIENT_ONLY:
        return opt, FlagProblem(
            f"sbatch flag {shown} only changes how the sbatch command behaves, and slurmdag runs sbatch itself",
            _CLIENT_HINT.get(opt.long, "remove it"),
        )
    if opt.arg == "none" and value is not None:
        return opt, FlagProblem(f"sbatch flag {shown} takes no value", f"write it as --{opt.long}")
    if opt.arg == "required" and value is None:
        return opt, FlagProblem(f"sbatch flag {shown} needs a value", f'write it as "--{opt.long}=VALUE"')
    return opt, None


@dataclass(frozen=True)
class Token:
    """One word of an sbatch argument list, quotes already removed, with where it started (1-based)."""

    text: str
    line: int
    col: int


@dataclass(frozen=True)
class ParsedOption:
    name: str  # canonical long name; for an unknown long option, the name as written
    value: str | None  # None for a flag (or an optional value left out)
    line: int
    col: int
    text: str  # the option as written, e.g. "-N2" or "--nodes"
    known: bool = True


@dataclass(frozen=True)
class ArgIssue:
    message: str
    line: int
    col: int
    hint: str | None = None
    # an option this table does not know and that looks like no known one: maybe newer than 22.05 or a site
    # plugin's, which the cluster's own `sbatch --help` can confirm (validate, pre-flight)
    unknown: bool = False


def parse_args(
    tokens: Sequence[Token], stop_at_operand: bool = True
) -> tuple[list[ParsedOption], list[Token], list[ArgIssue]]:
    """Read options the way sbatch's getopt_long does: `--long=v`, `--long v`, `-Nv`, `-N v`, clustered flags.

    Returns (options in order, operands, issues). sbatch stops at its first operand (the script; what follows are the
    script's arguments), so with `stop_at_operand` every later token is an operand too. An unknown long option is
    kept (`known=False`; it may come from a site plugin) with an issue; an unknown short letter is only an issue.
    """
    opts: list[ParsedOption] = []
    issues: list[ArgIssue] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        t = tok.text
        if t == "--":
            return opts, list(tokens[i + 1 :]), issues
        if t.startswith("--"):
            name, eq, val = t[2:].partition("=")
            found = lookup_long(name)
            opt = found.option
            if opt is None and name in NEWER_OPTIONS:  # a newer Slurm's option: passed on, the cluster decides
                kind = NEWER_OPTIONS[name][1]
                if kind == "required" and not eq and i + 1 < n:
                    i += 1
                    val, eq = tokens[i].text, "="
                opts.append(ParsedOption(name, val if eq else None, tok.line, tok.col, t, known=False))
                i += 1
                continue
            if opt is None:
                if found.how == "ambiguous":
                    issues.append(ArgIssue(found.describe(), tok.line, tok.col, "write more of the name"))
                else:
                    meant = near_miss(name)
                    hint = (
                        f"did you mean --{meant}?" if meant else "not in sbatch's option list (a site plugin option?)"
                    )
                    issues.append(ArgIssue(found.describe(), tok.line, tok.col, hint, unknown=meant is None))
                opts.append(ParsedOption(name, val if eq else None, tok.line, tok.col, t, known=False))
                i += 1
                continue
            if opt.arg == "none":
                if eq:
                    issues.append(ArgIssue(f"option --{opt.long} takes no value", tok.line, tok.col))
                opts.append(ParsedOption(opt.long, None, tok.line, tok.col, t))
            elif opt.arg == "optional" or eq:
                opts.append(ParsedOption(opt.long, val if eq else None, tok.line, tok.col, t))
            elif i + 1 < n:
                i += 1
                opts.append(ParsedOption(opt.long, tokens[i].text, tok.line, tok.col, t))
            else:
                issues.append(ArgIssue(f"option --{opt.long} needs a value", tok.line, tok.col))
            i += 1
            continue
        if t.startswith("-") and len(t) > 1:
            j = 1
            while j < len(t):
                letter = t[j]
                opt = BY_SHORT.get(letter)
                col = tok.col if j == 1 else tok.col + j
                if opt is None:
                    issues.append(ArgIssue(f"unknown sbatch option -{letter}", tok.line, col))
                    j += 1
                    continue
                rest = t[j + 1 :]
                if opt.arg == "none":
                    opts.append(ParsedOption(opt.long, None, tok.line, col, "-" + letter))
                    j += 1
                    continue
                if rest:
                    opts.append(ParsedOption(opt.long, rest, tok.line, col, "-" + letter + rest))
                elif opt.arg == "optional":
                    opts.append(ParsedOption(opt.long, None, tok.line, col, "-" + letter))
                elif i + 1 < n:
                    i += 1
                    opts.append(ParsedOption(opt.long, tokens[i].text, tok.line, col, "-" + letter))
                else:
                    issues.append(ArgIssue(f"option -{letter} (--{opt.long}) needs a value", tok.line, col))
                break
            i += 1
            continue
        # An operand.
        if stop_at_operand:
            return opts, list(tokens[i:]), issues
        issues.append(ArgIssue(f"not an option: {t!r}", tok.line, tok.col))
        i += 1
    return opts, [], issues


# --- writing options: the two spellings slurmdag writes (compiler/render.py decides what is written) ---


def render_flag(name: str, value: str | None) -> str:
    """`--name=value` (or `--name` for a flag) as one sbatch argument: no shell, so no quoting."""
    return f"--{name}" if value is None else f"--{name}={value}"


def render_directive(name: str, value: str | None) -> str:
    """The same option as the text after `#SBATCH `: values with blanks, quotes, '#' or backslashes are quoted."""
    return f"--{name}" if value is None else f"--{name}={quote_directive_value(value)}"


def quote_directive_value(value: str) -> str:
    """Write a value so sbatch's #SBATCH reader gives it back unchanged (quotes, '#', spaces, backslashes)."""
    if value and not any(c.isspace() or c in "\"'\\#" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
