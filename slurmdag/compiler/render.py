"""Batch-script text from a job's context, through Jinja2 templates; and the one place a planned job's sbatch
options are written. Pure apart from reading template files.

The default template ships in the package (`slurmdag/templates/job.sbatch.j2`); user template directories are
searched first, so a site can replace it by dropping a file of the same name in its own directory.

`sbatch_options` turns a planned job into its sbatch options; the script's `#SBATCH` block (`directive_lines`) and
the sbatch command line (`command_line`) are both written from that one list, so they cannot disagree. Compiled
scripts carry the allocation's own name; once a DAG is submitted (`Submission`), every script in the store carries
the same job name and comment as its sbatch call (`bind_script`).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import NamedTuple

import jinja2

from slurmdag.compiler.script_directives import iter_lines, leading_block
from slurmdag.model import run_layout
from slurmdag.model.errors import InternalError
from slurmdag.model.plan import PlannedJob
from slurmdag.model.sbatch_options import ParsedOption, parse_args, render_directive, render_flag, resolve_long
from slurmdag.model.slurm_values import format_walltime

TEMPLATE_NAME = "job.sbatch.j2"


@dataclass
class ScriptContext:
    """Everything a template may use. Values are raw; the template quotes them (filter `shquote`)."""

    workflow: str
    name: str  # the Slurm job name written in the script (allocation name, or `<alloc>+any` for joins)
    kind: str  # "allocation" | "join"
    directives: list[str]  # "--opt=value" / "--flag", sorted, including --job-name and --array
    for_allocation: str | None = None
    env: list[tuple[str, str]] = field(default_factory=list)  # exported in this order
    # env values holding {{ outputs... }}: (name, shell word) exported after `env` (compiler/output_refs.py)
    env_words: list[tuple[str, str]] = field(default_factory=list)
    output_reads: list[str] = field(default_factory=list)  # shell lines reading the outputs it uses, at its start
    output_checks: list[str] = field(default_factory=list)  # shell lines checking the outputs it declares
    task_group: bool = False
    matrix_keys: list[str] = field(default_factory=list)  # env var names, e.g. SLURMDAG_MATRIX_LR
    matrix_rows: list[tuple[str, ...]] = field(default_factory=list)  # row i = values of array task i
    setup: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    script_path: str | None = None
    script_body: str | None = None  # `script:` text placed verbatim after slurmdag's lines (no #! line)
    shebang: str = "#!/bin/bash"  # a `script:` keeps its own interpreter
    shell: str = "bash"  # "bash", "sh" (POSIX code only) or "none" (not a shell: nothing is added before the body)
    retries: int = 0  # entrypoint allocations: run the entrypoint again up to this many times if it fails
    stop_dag: bool = False  # `on_failure: stop`: on a non-zero exit the job cancels its DAG's other jobs first
    stop_if: str | None = None  # `stop_if:` as written (a comment in the script)
    stop_if_shell: list[str] = field(default_factory=list)  # lines exiting 0 when it holds (compiler/stop_if.py)
    stopped_early_file: str = run_layout.STOPPED_EARLY  # in the run folder: which allocation's stop_if held
    # The line that sets SLURMDAG_DAG_ID and SLURMDAG_RUN_DIR; `bind_script` rewrites it for a submitted DAG.
    location: str = field(default_factory=run_layout.location_line)

    @property
    def outputs_dir(self) -> str:
        """SLURMDAG_OUTPUTS as a shell word: this allocation's (or this task's) outputs folder."""
        return run_layout.outputs_dir_shell(self.name, self.task_group)


# --- sbatch options: one list per job, written as the #SBATCH block and as the command line ---

Option = tuple[str, str | None]  # long name without "--", value (None: a bare flag)


@dataclass(frozen=True)
class Submission:
    """What ties a planned job to one submitted DAG: the job name and comment Slurm shows, how a dead
    dependency ends (`--kill-on-invalid-dep`) and the folder its output goes to."""

    dag_id: str
    kill_invalid_dep: bool = True  # False when `slurmdag reconcile` clears impossible dependencies instead
    log_dir: str | None = None  # None: Slurm's default (a DAG recorded before log folders existed)
    run_dir: str | None = None  # SLURMDAG_RUN_DIR of its jobs (model/run_layout.py); None: as compiled


DEV_NULL = "/dev/null"


def slurm_job_name(dag_id: str, name: str) -> str:
    """The job name of a DAG's job in Slurm. The retry loop of the template reads it back (`sd-<dag>-<name>`)."""
    return f"sd-{dag_id}-{name}"


def job_name_prefix(dag_id: str) -> str:
    return f"sd-{dag_id}-"


def job_comment(dag_id: str, name: str) -> str:
    return f"slurmdag:{dag_id}:{name}"


def default_output(job: PlannedJob, log_dir: str) -> str:
    """An allocation's output file in its DAG's log folder (runs/logs.py finds it again)."""
    if job.array:
        return f"{log_dir}/{job.name}_%A_%a.out"
    return f"{log_dir}/{job.name}_%j.out"


def sbatch_options(job: PlannedJob, submission: Submission | None = None) -> list[Option]:
    """Every sbatch option of `job`, sorted by name: its options, walltime, array and name (plus, once submitted,
    the DAG's job name, comment, --kill-on-invalid-dep and its file in the DAG's log folder). Only --dependency is
    not here: it needs the parents' job ids."""
    options = dict(job.options)
    if job.walltime is not None:
        options["time"] = format_walltime(job.walltime)
    if job.array:
        options["array"] = job.array
    if "output" not in options:  # an allocation's own `output:` (or its script's) wins
        if job.kind == "join":  # it runs `exit 0`: nothing to keep, and no slurm-%j.out in the submit dir
            options["output"] = DEV_NULL
            options.setdefault("error", DEV_NULL)
        elif submission is not None and submission.log_dir is not None:
            options["output"] = default_output(job, submission.log_dir)
    if submission is None:
        options["job-name"] = job.name  # a compiled script, submittable by hand under its allocation's name
    else:
        options["job-name"] = slurm_job_name(submission.dag_id, job.name)
        # a comment of the user's own (in job.options) is kept as written; slurmdag finds its jobs by name
        options.setdefault("comment", job_comment(submission.dag_id, job.name))
        options["kill-on-invalid-dep"] = "yes" if submission.kill_invalid_dep else "no"
    return sorted(options.items())


def directive_lines(options: Iterable[Option]) -> list[str]:
    """The text after each `#SBATCH ` of a script's block."""
    return [render_directive(name, value) for name, value in options]


def command_line(options: Iterable[Option]) -> list[str]:
    """The same options as sbatch arguments."""
    return [render_flag(name, value) for name, value in options]


_DIRECTIVE = re.compile(r"^#SBATCH\s+--([A-Za-z][A-Za-z0-9-]*)")
# Options slurmdag writes into a block whether or not the job's options name them.
_ALWAYS_WRITTEN = frozenset({"job-name", "array", "time", "comment", "kill-on-invalid-dep"})


def with_directives(script: str, options: Sequence[Option]) -> str:
    """The script with its #SBATCH block written from `options`: slurmdag's lines in the leading block (before the
    first command, where sbatch reads them) are replaced; lines a site template adds for other options stay."""
    ours = {name for name, _ in options} | _ALWAYS_WRITTEN
    lines = script.split("\n")
    out: list[str] = []
    at: int | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if i > 0 and text and not text.startswith("#"):  # the first command: nothing below is a directive
            out.extend(lines[i:])
            break
        m = _DIRECTIVE.match(line)
        if m and m.group(1) in ours:
            at = len(out) if at is None else at
            continue
        out.append(line)
    block = [f"#SBATCH {line}" for line in directive_lines(options)]
    if at is None:
        at = 1 if out and out[0].startswith("#!") else 0
    out[at:at] = block
    return "\n".join(out)


def refreshed_script(job: PlannedJob) -> str:
    """The job's compiled script with its #SBATCH block rewritten from the job as it is now (an array throttled or
    split after compiling)."""
    return _rewritten(job, sbatch_options(job), "rewritten after compiling")[0]


class BoundScript(NamedTuple):
    text: str
    # its #SBATCH block as sbatch reads it, in order (check_script's reading): a backend that needs the directives
    # (pyslurm) takes them from here instead of reading and parsing the file it was just written to
    directives: tuple[ParsedOption, ...]


def bind_script(job: PlannedJob, submission: Submission) -> str:
    """The script as submitted: its #SBATCH block says what its sbatch call says, and its location line names the
    DAG and its run folder."""
    return bind(job, submission).text


def bind(job: PlannedJob, submission: Submission) -> BoundScript:
    """bind_script, with the directives of the script it returns."""
    script, directives = _rewritten(job, sbatch_options(job, submission), f"written for DAG {submission.dag_id}")
    # the location line is in the body, below the block: the directives stay as checked
    return BoundScript(run_layout.bind_location(script, submission.dag_id, submission.run_dir), directives)


def _rewritten(job: PlannedJob, options: Sequence[Option], how: str) -> tuple[str, tuple[ParsedOption, ...]]:
    """with_directives, checked like a freshly rendered script (a value given at submit time, such as a log folder
    holding a newline, must not end the block either): the block holds `options` and the lines it kept."""
    script = with_directives(job.script, options)
    ours = {name for name, _ in options} | _ALWAYS_WRITTEN
    tokens, _, _ = leading_block(iter_lines(job.script), job.name)
    kept = {o.name: o.value for o in parse_args(tokens, stop_at_operand=True)[0] if o.name not in ours}
    return script, check_script(job.name, script, {**kept, **dict(options)}, how)


def check_script(job: str, script: str, directives: Mapping[str, str | None], how: str) -> tuple[ParsedOption, ...]:
    """The last line of defence against a user string ending the #SBATCH block early or adding a line to it: read
    the rendered script the way sbatch does and require exactly the planned directives, or raise InternalError.

    Validation should have refused any such string already; reaching the raise is a bug (or a site template that
    writes its own #SBATCH lines), and nothing may be submitted from it.
    """
    problems: list[str] = []
    if not script.startswith("#!"):
        problems.append("it does not start with a #! line")
    if "\r\n" in script:
        problems.append("it holds a DOS line break (\\r\\n), which sbatch refuses")
    tokens, block_problems, _ = leading_block(iter_lines(script), job)
    problems.extend(p.message for p in block_problems)
    opts, operands, _ = parse_args(tokens, stop_at_operand=True)
    if operands:
        problems.append(f"line {operands[0].line}: {operands[0].text[:60]!r} is not an option")
    got = sorted((o.name, o.value) for o in opts)
    want = sorted((_canonical(k), v) for k, v in directives.items())
    if got != want:
        missing = [_flag(n, v) for n, v in want if (n, v) not in got]
        extra = [_flag(n, v) for n, v in got if (n, v) not in want]
        problems.append(
            "its #SBATCH block differs from the plan"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not planned: {', '.join(extra)}" if extra else "")
        )
    if problems:
        raise InternalError(
            f"the batch script {how} for {job!r} is not what the plan says: "
            + "; ".join(problems)
            + ". Nothing was submitted. This is a bug in slurmdag or in the template; please report it."
        )
    return tuple(opts)


def _canonical(name: str) -> str:
    opt = resolve_long(name)
    return opt.long if opt else name


def _flag(name: str, value: str | None) -> str:
    text = f"--{name}" if value is None else f"--{name}={value}"
    return repr(text[:80] + "..." if len(text) > 80 else text)


def script_body(script: str) -> str:
    """A rendered script from its first command on: without its #! line, #SBATCH block and header comments."""
    lines = script.split("\n")
    for i, line in enumerate(lines):
        text = line.strip()
        if i > 0 and text and not text.startswith("#"):
            return chomp("\n".join(lines[i:]))
    return ":"  # no command at all: a no-op keeps the case branch valid


def packed_array_script(workflow: str, host: PlannedJob, member_scripts: Sequence[str]) -> str:
    """The batch script of an auto_array job: array task i runs the body of member i's own script (its #! line is
    every member's). Bodies are placed verbatim, unindented (a here-document's end marker must start its line)."""
    options = sbatch_options(host)
    shebang = member_scripts[0].split("\n", 1)[0]
    out = [shebang, *(f"#SBATCH {line}" for line in directive_lines(options))]
    out += [
        "#",
        f"# slurmdag workflow: {_comment_text(workflow)}",
        f"# packed array (auto_array): array task i runs allocation i of {len(member_scripts)}:",
        *(f"#   {i}: {_comment_text(name)}" for i, name in enumerate(host.members)),
        "# Generated by `slurmdag compile`; sbatch reads #SBATCH lines only up to the first command below.",
    ]
    # The location line once, before the dispatch: bind_script rewrites the first one for the submitted DAG.
    bodies = [_without_location(script_body(script)) for script in member_scripts]
    if any(located for _, located in bodies):
        out.append(run_layout.location_line())
    out.append('case "${SLURM_ARRAY_TASK_ID:-}" in')
    for i, (body, _) in enumerate(bodies):
        out += [f"{i})", body, ";;"]
    out += [
        "*)",
        "  echo \"slurmdag: array task '${SLURM_ARRAY_TASK_ID:-}' runs no allocation\" >&2",
        "  exit 1",
        "  ;;",
        "esac",
        "",
    ]
    script = "\n".join(out)
    check_script(host.name, script, dict(options), "written for a packed array")
    return script


def _without_location(body: str) -> tuple[str, bool]:
    """A member's body without its location line (the array script has it once); whether it had one."""
    lines = body.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(run_layout.LOCATION_PREFIX):
            return "\n".join(lines[:i] + lines[i + 1 :]), True
    return body, False


def _comment_text(text: str) -> str:
    """Text for a `#` comment line: names are validated already; a line break would end the comment."""
    return text.replace("\n", " ").replace("\r", " ")


def strip_shebang(body: str) -> str:
    return body.split("\n", 1)[1] if body.startswith("#!") else body


def chomp(text: str) -> str:
    """Drop one trailing newline: the template ends each block with its own (YAML `|` blocks carry one)."""
    return text[:-1] if text.endswith("\n") else text


class Renderer:
    """One Jinja2 environment and one compiled template for a whole plan (compiling per job would dominate)."""

    def __init__(self, template_dirs: Sequence[str | PathLike[str]] = ()):
        loaders: list[jinja2.BaseLoader] = (
            [jinja2.FileSystemLoader([str(d) for d in template_dirs])] if template_dirs else []
        )
        loaders.append(jinja2.PackageLoader("slurmdag", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=False,  # shell, not HTML: quoting is explicit via `shquote`
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["shquote"] = shlex.quote
        self.env.filters["strip_shebang"] = strip_shebang
        self.env.filters["chomp"] = chomp
        self.template = self.env.get_template(TEMPLATE_NAME)

    def render(self, ctx: ScriptContext, directives: Mapping[str, str | None]) -> str:
        """The script of one job; `directives` are the options its #SBATCH block must hold (checked)."""
        script = self.template.render(job=ctx)
        check_script(ctx.name, script, directives, f"rendered by {self.template.filename or TEMPLATE_NAME}")
        return script


@functools.lru_cache(maxsize=8)
def _cached(dirs: tuple[str, ...]) -> Renderer:
    return Renderer(dirs)


def renderer_for(template_dirs: Sequence[str | PathLike[str]] = ()) -> Renderer:
    """A shared Renderer per list of template dirs (Jinja re-reads a template file when it changes)."""
    return _cached(tuple(str(d) for d in template_dirs))
