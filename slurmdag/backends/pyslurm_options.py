"""sbatch options as a pyslurm `JobSubmitDescription`: what the pyslurm backend submits instead of running sbatch.

Pure (no pyslurm, no I/O): options, the script's `#SBATCH` directives and the environment in, the description's
fields out, or the reason this job must go through sbatch after all. Only options whose meaning was checked against
sbatch 22.05 on a real cluster (`tests/integration/test_pyslurm_backend_cluster.py` compares `scontrol show job` of
both) are translated; any other option, an `SBATCH_*` variable this module does not know, or a value it cannot read
sends the job to sbatch, so a job is never submitted differently from what sbatch would have done.

sbatch's order is kept: `#SBATCH` lines < `SBATCH_*` environment variables < command-line options.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from slurmdag.model.sbatch_options import ParsedOption, Token, parse_args

# pyslurm's value for "submit held" (what sbatch --hold sends: priority 0, a user hold).
HELD_PRIORITY = 0


class _UntranslatableError(Exception):
    """This option or value is left to sbatch."""


def _text(value: str | None) -> str:
    if value is None or value == "":
        raise _UntranslatableError("needs a value")
    return value


def _count(value: str | None) -> int:
    if value is None or not value.isdigit():
        raise _UntranslatableError(f"{value!r} is not a plain count")
    return int(value)


_MEMORY = re.compile(r"^(\d+)([KMGTkmgt])?$")
_MB = {"K": None, "M": 1, "G": 1024, "T": 1024 * 1024}


def _memory_mb(value: str | None) -> int:
    """sbatch's `--mem`: megabytes, or a number with a unit M, G or T (K is left to sbatch: it rounds)."""
    m = _MEMORY.match(value or "")
    if not m:
        raise _UntranslatableError(f"{value!r} is not a size sbatch and pyslurm read alike")
    factor = _MB[(m.group(2) or "M").upper()]
    if factor is None or int(m.group(1)) == 0:  # --mem=0 means "the whole node" to Slurm
        raise _UntranslatableError(f"{value!r} is left to sbatch")
    return int(m.group(1)) * factor


def _time(value: str | None) -> int | str:
    """Minutes as an int (pyslurm passes a digit string through uncounted), else Slurm's own time syntax."""
    text = _text(value)
    if text.isdigit():
        return int(text)
    if not re.fullmatch(r"[0-9:-]+", text):  # UNLIMITED, INFINITE...: left to sbatch
        raise _UntranslatableError(f"{text!r} is left to sbatch")
    return text


def _nodes(value: str | None) -> str:
    if not re.fullmatch(r"[1-9]\d*(-[1-9]\d*)?", value or ""):
        raise _UntranslatableError(f"{value!r} is not a node count or min-max range")
    return str(value)


def _kill_yes(value: str | None) -> bool:
    if value == "yes":
        return True
    # sbatch sends =no as Slurm's NO_KILL_INV_DEP flag (it overrides a cluster-wide kill_invalid_depend); pyslurm
    # 22.5 can only leave the kill flag unset, which is not the same job.
    raise _UntranslatableError(f"={value} is left to sbatch (pyslurm cannot send it)")


def _sharing(value: str | None) -> str:
    # --exclusive alone: no sharing; =user / =mcs as Slurm names them.
    if value in (None, ""):
        return "no"
    if value in ("user", "mcs"):
        return value
    raise _UntranslatableError(f"--exclusive={value} is left to sbatch")


def _open_mode(value: str | None) -> str:
    if value in ("append", "truncate"):
        return value
    raise _UntranslatableError(f"{value!r} is not append or truncate")


def _flag(value: str | None) -> bool:
    if value is not None:
        raise _UntranslatableError("takes no value")
    return True


# sbatch long option -> (JobSubmitDescription attribute, value converter). Everything else goes through sbatch.
_FIELDS: dict[str, tuple[str, Callable[[str | None], object]]] = {
    "account": ("account", _text),
    "array": ("array", _text),
    "comment": ("comment", _text),
    "constraint": ("constraints", _text),
    "cpus-per-task": ("cpus_per_task", _count),
    "dependency": ("dependencies", _text),  # a string: pyslurm mutates a dict it is given
    "error": ("standard_error", _text),
    "input": ("standard_in", _text),
    "job-name": ("name", _text),
    "kill-on-invalid-dep": ("kill_on_invalid_dependency", _kill_yes),
    "mem": ("memory_per_node", _memory_mb),
    "mem-per-cpu": ("memory_per_cpu", _memory_mb),
    "nodes": ("nodes", _nodes),
    "ntasks": ("ntasks", _count),
    "open-mode": ("log_files_open_mode", _open_mode),
    "output": ("standard_output", _text),
    "partition": ("partitions", _text),
    "qos": ("qos", _text),
    "reservation": ("reservations", _text),
    "time": ("time_limit", _time),
    "time-min": ("time_limit_min", _time),
    "wckey": ("wckey", _text),
    "exclusive": ("resource_sharing", _sharing),
}
# Options handled below rather than by the table.
_SPECIAL = frozenset({"chdir", "export", "hold", "requeue", "no-requeue"})

# SBATCH_* input variables sbatch 22.05 reads as options, for the options translated here. Any other SBATCH_*
# variable in the environment sends the job to sbatch (it may change the job in a way not translated here).
ENV_OPTIONS: dict[str, str] = {
    "SBATCH_ACCOUNT": "account",
    "SBATCH_CONSTRAINT": "constraint",
    "SBATCH_EXCLUSIVE": "exclusive",
    "SBATCH_EXPORT": "export",
    "SBATCH_JOB_NAME": "job-name",
    "SBATCH_MEM_PER_CPU": "mem-per-cpu",
    "SBATCH_MEM_PER_NODE": "mem",
    "SBATCH_NO_REQUEUE": "no-requeue",
    "SBATCH_OPEN_MODE": "open-mode",
    "SBATCH_PARTITION": "partition",
    "SBATCH_QOS": "qos",
    "SBATCH_REQUEUE": "requeue",
    "SBATCH_RESERVATION": "reservation",
    "SBATCH_TIMELIMIT": "time",
    "SBATCH_WCKEY": "wckey",
}
_ENV_FLAGS = frozenset({"no-requeue", "requeue"})


@dataclass
class Submission:
    """A JobSubmitDescription's fields, or why this job goes through sbatch (`fields` is then empty).

    Like sbatch, the fields leave out the task count and CPUs per task unless given (pyslurm's own defaults send
    both as 1, and Slurm then sizes the job differently); `min_cpus` is the job's CPU count as sbatch computes it.
    """

    fields: dict[str, object] = field(default_factory=dict)
    sbatch_reason: str | None = None
    min_cpus: int = 1


def parse_option_words(options: Sequence[str]) -> tuple[list[ParsedOption], str | None]:
    """slurmdag's own option words (`--name=value`, `--flag`), read as sbatch would; a reason if unreadable."""
    opts, operands, issues = parse_args([Token(w, 1, i + 1) for i, w in enumerate(options)])
    if issues or operands or any(not o.known for o in opts):
        first = issues[0].message if issues else f"cannot read {' '.join(options)!r}"
        return opts, first
    return opts, None


def effective_options(
    directives: Sequence[ParsedOption], environ: Mapping[str, str], options: Sequence[ParsedOption]
) -> tuple[dict[str, str | None], str | None]:
    """The value sbatch ends up with for each option: script < SBATCH_* variables < command line."""
    out: dict[str, str | None] = {}
    for d in directives:
        if not d.known:
            return out, f"the script's --{d.name} is not an option sbatch 22.05 knows"
        out[d.name] = d.value
    for name, value in sorted(environ.items()):
        if not name.startswith("SBATCH_"):
            continue
        long = ENV_OPTIONS.get(name)
        if long is None:
            return out, f"{name} is set (sbatch reads it; the pyslurm backend does not)"
        out[long] = None if long in _ENV_FLAGS else value
    for o in options:
        out[o.name] = o.value
    # --requeue and --no-requeue are one setting: the one given last wins.
    return out, None


@dataclass(frozen=True)
class Submitter:
    """What sbatch 22.05 reads from its own process into every job's environment (`sbatch_environment`)."""

    cwd: str
    host: str
    umask: int
    priority: int  # getpriority() of the submitting process: SLURM_PRIO_PROCESS
    rlimits: tuple[tuple[str, str], ...]  # ("NOFILE", "1024"), ...: the SLURM_RLIMIT_* slurmd applies to the job
    # Whether a job without --nodes leaves the node count to Slurm as sbatch does (pyslurm itself pins it to 1-1;
    # the backend patches that where it can).
    nodes_unpinned: bool = False
    # sbatch of Slurm 23.11 and later (measured: 24.11): tells an MPI launcher inside the job to start its ranks
    # through srun (set_env_from_opts in Slurm's env.c), and no longer puts SLURM_JOB_NAME into the job's environment
    newer_sbatch: bool = False


def sbatch_environment(environ: Mapping[str, str], who: Submitter, job_name: str) -> dict[str, str]:
    """The job's environment as sbatch 22.05 sends it with the default --export=ALL: the caller's variables plus
    the ones sbatch adds (slurmd applies SLURM_UMASK and SLURM_RLIMIT_* to the job, then removes them)."""
    env = dict(environ)
    if not who.newer_sbatch:
        env["SLURM_JOB_NAME"] = job_name
    for name, value in who.rlimits:
        env[f"SLURM_RLIMIT_{name}"] = value
    env["SLURM_PRIO_PROCESS"] = str(who.priority)
    env["SLURM_SUBMIT_DIR"] = who.cwd
    env["SLURM_SUBMIT_HOST"] = who.host
    env.setdefault("SLURM_UMASK", f"{who.umask:04o}")  # sbatch keeps one already set
    if who.newer_sbatch:
        # appended only when not set already, as env_array_append does; Hydra's bootstrap only when unset or "slurm"
        env.setdefault("OMPI_MCA_plm_slurm_args", "--external-launcher")
        env.setdefault("PRTE_MCA_plm_slurm_args", "--external-launcher")
        for bootstrap, extra in (
            ("HYDRA_BOOTSTRAP", "HYDRA_LAUNCHER_EXTRA_ARGS"),
            ("I_MPI_HYDRA_BOOTSTRAP", "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS"),
        ):
            if environ.get(bootstrap) in (None, "slurm"):
                env.setdefault(bootstrap, "slurm")
                env.setdefault(extra, "--external-launcher")
    return env


def translate(
    script: str,
    options: Sequence[str],
    directives: Sequence[ParsedOption],
    environ: Mapping[str, str],
    who: Submitter,
) -> Submission:
    """The JobSubmitDescription fields sbatch's equivalent would produce for `sbatch [options] script`."""
    parsed, problem = parse_option_words(options)
    if problem:
        return Submission(sbatch_reason=problem)
    wanted, problem = effective_options(directives, environ, parsed)
    if problem:
        return Submission(sbatch_reason=problem)
    if who.newer_sbatch and wanted.get("cpus-per-task"):
        # sbatch 24.11 also sends TresPerTask=cpu=N for it, which pyslurm's description cannot carry
        return Submission(sbatch_reason="--cpus-per-task (sbatch 24.11+ adds TresPerTask=cpu=N, pyslurm cannot)")
    # --requeue/--no-requeue: whichever came last in sbatch's order (later sources overwrite earlier keys).
    requeue = _last_of(directives, environ, parsed, ("requeue", "no-requeue"))
    fields: dict[str, object] = {}
    for name, value in wanted.items():
        try:
            if name in _FIELDS:
                attr, convert = _FIELDS[name]
                fields[attr] = convert(value)
            elif name == "chdir":
                fields["working_directory"] = os.path.join(who.cwd, _text(value))  # sbatch makes it absolute
            elif name == "export":
                if value != "ALL":
                    raise _UntranslatableError(f"--export={value} is left to sbatch")
            elif name == "hold":
                _flag(value)
                fields["priority"] = HELD_PRIORITY
            elif name in ("requeue", "no-requeue"):
                _flag(value)
            else:
                return Submission(sbatch_reason=f"--{name} is not translated for pyslurm")
        except _UntranslatableError as ex:
            return Submission(sbatch_reason=f"--{name}: {ex}")
    if requeue is not None:
        fields["is_requeueable"] = requeue == "requeue"
    if "nodes" not in fields and fields.get("ntasks", 1) != 1 and not who.nodes_unpinned:
        # pyslurm pins a job without --nodes to one node; sbatch lets Slurm spread its tasks over several.
        return Submission(sbatch_reason="--ntasks without --nodes: pyslurm would pin the job to one node")
    fields.setdefault("working_directory", who.cwd)
    fields.setdefault("name", os.path.basename(script))  # sbatch's default job name
    fields["script"] = script
    fields["script_args"] = [script]  # argv[0]: Slurm shows it as the job's Command, as for sbatch
    fields["environment"] = {
        **sbatch_environment(environ, who, str(fields["name"])),
        **_option_environment(wanted, who.newer_sbatch),
    }
    tasks = fields.get("ntasks", 1)
    cpus = fields.get("cpus_per_task", 1)
    assert isinstance(tasks, int) and isinstance(cpus, int)
    return Submission(fields, min_cpus=tasks * cpus)


def _option_environment(wanted: Mapping[str, str | None], newer_sbatch: bool = False) -> dict[str, str]:
    """The variables sbatch 22.05 sets in the job's environment for options translated here (measured: the
    environment slurmctld stored for jobs sbatch submitted with each option)."""
    env = {}
    if wanted.get("cpus-per-task"):
        env["SLURM_CPUS_PER_TASK"] = str(int(str(wanted["cpus-per-task"])))
    if wanted.get("dependency"):
        env["SLURM_JOB_DEPENDENCY"] = str(wanted["dependency"])
    if wanted.get("ntasks"):
        env["SLURM_NTASKS"] = env["SLURM_NPROCS"] = str(int(str(wanted["ntasks"])))
    if not newer_sbatch and wanted.get("open-mode") in ("append", "truncate"):
        env["SLURM_OPEN_MODE"] = str(wanted["open-mode"])[0]
    return env


def _last_of(
    directives: Sequence[ParsedOption],
    environ: Mapping[str, str],
    options: Sequence[ParsedOption],
    names: tuple[str, ...],
) -> str | None:
    last = None
    for d in directives:
        if d.name in names:
            last = d.name
    for var, long in sorted(ENV_OPTIONS.items()):
        if long in names and var in environ:
            last = long
    for o in options:
        if o.name in names:
            last = o.name
    return last


# The limits sbatch propagates, in its order (Slurm's rlimits_info table); their soft values go to the job.
RLIMIT_NAMES = ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS")
_UNLIMITED = 2**64 - 1  # RLIM_INFINITY as sbatch prints it (an unsigned long)


def propagated_rlimits(
    propagate: str | None, except_: str | None, soft: Mapping[str, int]
) -> tuple[tuple[str, str], ...]:
    """SLURM_RLIMIT_* values for the cluster's PropagateResourceLimits[Except] (ALL, NONE or a list of names).

    `soft` holds the submitting process's soft limits (-1: unlimited). Raises ValueError for a setting not read here.
    """

    def names(text: str | None) -> set[str]:
        words = {w.strip().upper() for w in (text or "").split(",") if w.strip() and w.strip() != "(null)"}
        unknown = words - set(RLIMIT_NAMES) - {"ALL", "NONE"}
        if unknown:
            raise ValueError(f"unknown resource limit(s) {', '.join(sorted(unknown))}")
        return words

    wanted = names(propagate)
    excluded = names(except_)
    if excluded:
        chosen = set(RLIMIT_NAMES) - excluded
    elif not wanted or "ALL" in wanted:
        chosen = set(RLIMIT_NAMES)
    elif "NONE" in wanted:
        chosen = set()
    else:
        chosen = wanted
    out = []
    for name in RLIMIT_NAMES:
        if name in chosen and name in soft:
            value = soft[name]
            out.append((name, str(_UNLIMITED if value < 0 else value)))
    return tuple(out)
