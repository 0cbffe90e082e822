"""Batch-script text from a job's context, through Jinja2 templates. Pure apart from reading template files.

The default template ships in the package (`slurmdag/templates/job.sbatch.j2`); user template directories are
searched first, so a site can replace it by dropping a file of the same name in its own directory.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike

import jinja2

from slurmdag.compiler.script_merge import quote_directive_value

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

    def render(self, ctx: ScriptContext) -> str:
        return self.template.render(job=ctx)


@functools.lru_cache(maxsize=8)
def _cached(dirs: tuple[str, ...]) -> Renderer:
    return Renderer(dirs)


def renderer_for(template_dirs: Sequence[str | PathLike[str]] = ()) -> Renderer:
    """A shared Renderer per list of template dirs (Jinja re-reads a template file when it changes)."""
    return _cached(tuple(str(d) for d in template_dirs))
