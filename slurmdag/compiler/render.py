"""Batch-script text from a job's context, through Jinja2 templates. Pure apart from reading template files.

The default template ships in the package (`slurmdag/templates/job.sbatch.j2`); user template directories are
searched first, so a site can replace it by dropping a file of the same name in its own directory.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike

import jinja2

from slurmdag.compiler.script_directives import iter_lines, leading_block
from slurmdag.compiler.script_merge import quote_directive_value
from slurmdag.model.errors import InternalError
from slurmdag.model.sbatch_options import parse_args, resolve_long

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


def directive_lines(options: dict[str, str | None], extra: dict[str, str | None]) -> list[str]:
    """The `#SBATCH` arguments, sorted by option name: `--name=value`, or `--name` for a bare flag.

    Values from a `script:` may hold blanks or quotes; they are quoted the way sbatch's directive reader undoes.
    """
    merged = {**options, **extra}
    return [f"--{k}" if v is None else f"--{k}={quote_directive_value(v)}" for k, v in sorted(merged.items())]


def check_script(job: str, script: str, directives: Mapping[str, str | None], template: str) -> None:
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
            f"the batch script rendered for {job!r} (template {template}) is not what the plan says: "
            + "; ".join(problems)
            + ". Nothing was submitted. This is a bug in slurmdag or in the template; please report it."
        )


def _canonical(name: str) -> str:
    opt = resolve_long(name)
    return opt.long if opt else name


def _flag(name: str, value: str | None) -> str:
    text = f"--{name}" if value is None else f"--{name}={value}"
    return repr(text[:80] + "..." if len(text) > 80 else text)


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
        check_script(ctx.name, script, directives, self.template.filename or TEMPLATE_NAME)
        return script


@functools.lru_cache(maxsize=8)
def _cached(dirs: tuple[str, ...]) -> Renderer:
    return Renderer(dirs)


def renderer_for(template_dirs: Sequence[str | PathLike[str]] = ()) -> Renderer:
    """A shared Renderer per list of template dirs (Jinja re-reads a template file when it changes)."""
    return _cached(tuple(str(d) for d in template_dirs))
