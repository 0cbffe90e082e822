"""The sbatch option table (Slurm 22.05 man page): long name, short letter, whether it takes a value.

Used to read `#SBATCH` lines and `sbatch` command lines the way sbatch's own getopt_long does, and to say which
options slurmdag owns.

Options slurmdag owns, and what happens when a user's batch script or bash chain carries one:

- `dependency`, `hold`, `parsable`, `kill-on-invalid-dep`, `wrap`: slurmdag sets these itself to build and submit
  the graph. Found in a script used as `script:` they are errors (express edges with `depends_on`). The importer
  turns `--dependency` into `depends_on`, `--wrap` into `entrypoint:` and drops the others with a warning.
- `comment`: slurmdag writes the DAG id and node name there (state can be rebuilt from Slurm). A script's own
  comment is reported and not applied.
- `array`: maps to the allocation's task group (`array:`); the workflow's `tasks`/`array`/`matrix` win over it.
- `job-name`: slurmdag names every job after its DAG and node. A script's own name is kept as information (the
  importer uses it as the allocation name) but never applied.
"""

from __future__ import annotations

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

# Older spellings sbatch 22.05 still accepts, mapped to the documented name.
ALIASES: dict[str, str] = {
    "tasks-per-node": "ntasks-per-node",
    "workdir": "chdir",
}

# Owned by slurmdag: the submission machinery sets them (see the module docstring for the policy).
OWNED: frozenset[str] = frozenset(
    {"dependency", "job-name", "array", "hold", "parsable", "kill-on-invalid-dep", "comment", "wrap"}
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
    "comment": ("note", "slurmdag stores the DAG id and node name in the comment; this one is not applied"),
    "job-name": ("note", "kept as information; slurmdag names jobs after the DAG and node"),
    "array": ("note", "becomes the allocation's task group; tasks/array/matrix in the workflow win"),
}

# Options that change how the sbatch *command* behaves, not the job; meaningless inside a workflow.
CLIENT_ONLY: frozenset[str] = frozenset({"help", "usage", "version", "quiet", "verbose", "test-only", "wait"})


def resolve_long(name: str) -> SbatchOption | None:
    """The option a `--name` means: an exact name, an alias, or (like getopt_long) an unambiguous prefix."""
    if name in BY_LONG:
        return BY_LONG[name]
    if name in ALIASES:
        return BY_LONG[ALIASES[name]]
    if not name:
        return None
    hits = {o.long for o in OPTIONS if o.long.startswith(name)}
    hits |= {ALIASES[a] for a in ALIASES if a.startswith(name)}
    if len(hits) == 1:
        return BY_LONG[hits.pop()]
    return None


def candidates(name: str) -> list[str]:
    """Long names `name` could abbreviate (for an 'ambiguous option' message)."""
    return sorted({o.long for o in OPTIONS if o.long.startswith(name)})


def is_owned(long: str) -> bool:
    return long in OWNED


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
            opt = resolve_long(name)
            if opt is None:
                cands = candidates(name)
                if len(cands) > 1:
                    issues.append(
                        ArgIssue(f"ambiguous option --{name}", tok.line, tok.col, "could be --" + ", --".join(cands))
                    )
                else:
                    issues.append(
                        ArgIssue(
                            f"unknown sbatch option --{name}",
                            tok.line,
                            tok.col,
                            "not in sbatch's option list (a site plugin option?)",
                        )
                    )
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


def render_flag(name: str, value: str | None) -> str:
    """`--name=value` (or `--name` for a flag): the one spelling slurmdag writes."""
    return f"--{name}" if value is None else f"--{name}={value}"
