"""Commands that need no Slurm: validate, compile, graph."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import typer

from slurmdag.cli import app
from slurmdag.cli.common import echo_json, echo_warnings
from slurmdag.model.errors import InputError, Problem, SlurmdagError, UsageError
from slurmdag.model.plan import Plan

# The compiler and the graph views are imported where they are used: a command that does not compile (status,
# list...) does not pay for them, and `submit` imports them while its pre-flight reads already run.

_SET_HELP = "Override a workflow param: --set NAME=VALUE (repeatable; VALUE is read as a YAML scalar)."


@app.command()
def validate(
    workflow: str = typer.Argument(..., metavar="WORKFLOW.yaml", help="The workflow file."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=_SET_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="Print {valid, allocations, problems, warnings}: each with file, line, column, hint."
    ),
) -> None:
    """Check a workflow without Slurm: exit 0 if valid, 2 with every problem as file:line:col."""
    from slurmdag.cli.policy import check_policy

    if as_json:
        _validate_json(workflow, set_)
        return
    plan = _compile(workflow, set_)
    check_policy(plan)  # the site policy's limits (exit 2 naming the limit and who set it)
    problems, notes = check_newer_options(plan, workflow)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if problems:
        raise InputError(problems)
    typer.echo(f"{workflow}: valid ({len(plan.allocations())} allocations)")


def check_newer_options(plan: Plan, file: str) -> tuple[list[Problem], list[str]]:
    """Options the 22.05 table does not know, checked against this machine's `sbatch --help` when there is one.

    A newer Slurm's option (NEWER_OPTIONS) that this sbatch does not list is refused: that sbatch would refuse it.
    Any other unknown option (a site plugin's, e.g. --uenv) that it does not list is a note only: a login node's sbatch
    may load other plugins than the cluster's, and submit's pre-flight asks the cluster itself."""
    from slurmdag.cli.common import open_backend
    from slurmdag.model.sbatch_options import NEWER_OPTIONS, resolve_long

    used: dict[str, list[str]] = {}
    for job in plan.allocations():
        for opt in job.options:
            if resolve_long(opt) is None:
                used.setdefault(opt, []).append(job.name)
    if not used:
        return [], []
    listed = open_backend().sbatch_options()
    if listed is None:
        names = ", ".join(f"--{o}" for o in sorted(used))
        return [], [f"{names} not checked: no sbatch here to ask (submit's pre-flight checks them)"]
    missing = {opt: names for opt, names in sorted(used.items()) if opt not in listed}
    problems = [
        Problem(
            f"--{opt} (allocation {', '.join(repr(n) for n in names[:3])}) is not an option of this cluster's sbatch",
            file,
            hint=f"it is an option of sbatch {NEWER_OPTIONS[opt][0]} and later; "
            "remove it, or submit where sbatch has it",
        )
        for opt, names in missing.items()
        if opt in NEWER_OPTIONS
    ]
    notes = [
        f"--{opt} (allocation {', '.join(repr(n) for n in names[:3])}) is not listed by this machine's sbatch --help "
        "(a site plugin's option?): submit's pre-flight checks it against the cluster"
        for opt, names in missing.items()
        if opt not in NEWER_OPTIONS
    ]
    return problems, notes


def _problem_json(p: Problem) -> dict[str, object]:
    return {"file": p.file, "line": p.line, "column": p.col, "message": p.message, "hint": p.hint}


def _validate_json(workflow: str, sets: list[str]) -> None:
    """validate --json: one document on stdout, valid or not (exit 2 when not), nothing on stderr."""
    from slurmdag.compiler.compile import compile_file, parse_overrides
    from slurmdag.policy import admission

    warnings: list[Problem] = []
    problems: list[Problem] = []
    plan = None
    try:
        cap = admission.allocation_cap()
        plan = compile_file(
            workflow,
            parse_overrides(sets),
            warnings=warnings,
            max_allocations=cap.value,
            limit_note=cap.note,
            auto_array=cap.auto_array,
        )
    except InputError as e:
        problems = e.problems
        warnings += cap.warnings
    if plan is not None:
        try:
            checked = admission.check_policy(plan)
        except InputError as e:  # an unreadable policy file
            problems = e.problems
        else:
            warnings += checked.warnings
            problems = checked.problems + check_newer_options(plan, workflow)[0]
    echo_json(
        {
            "file": workflow,
            "valid": not problems,
            "allocations": len(plan.allocations()) if plan is not None and not problems else None,
            "problems": [_problem_json(p) for p in problems],
            "warnings": [_problem_json(p) for p in warnings],
        }
    )
    if problems:
        raise typer.Exit(2)


@app.command("compile")
def compile_cmd(
    workflow: str = typer.Argument(..., metavar="WORKFLOW.yaml", help="The workflow file."),
    out: Path = typer.Option(..., "-o", "--output", metavar="DIR", help="Directory for plan.json and the scripts."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=_SET_HELP),
    template_dir: list[Path] = typer.Option(
        [], "--template-dir", metavar="DIR", help="Look for job.sbatch.j2 here before the built-in template."
    ),
) -> None:
    """Write DIR/plan.json and one <name>.sbatch per job (join jobs included); needs no Slurm."""
    plan = _compile(workflow, set_, template_dir)
    for path in write_plan_dir(plan, out):
        typer.echo(f"wrote {path}")
    for job in plan.allocations():
        if job.option_sources is not None:
            typer.echo(f"{job.name}: sbatch options (script merged with the workflow; the workflow wins):")
            for line in job.option_sources:
                typer.echo(f"  {line}")
    from slurmdag.compiler import packing

    for line in packing.explain(plan):
        typer.echo(line)
    groups = [j for j in plan.jobs if j.kind == "host" and not j.array]
    for job in groups:
        typer.echo(f"{job.name}: {', '.join(job.members)}")
        for line in job.why or ():
            typer.echo(f"  {line}")
    joins = len([j for j in plan.jobs if j.kind in ("join", "part")])
    arrays = [j for j in plan.jobs if j.kind == "host" and j.array]
    parts = []
    if arrays:
        packed = sum(len(j.members) for j in arrays)
        parts.append(f"{packed} of them packed into {len(arrays)} array job{'s' if len(arrays) != 1 else ''}")
    if groups:
        grouped = sum(len(j.members) for j in groups)
        parts.append(f"{grouped} of them in {len(groups)} group{'s' if len(groups) != 1 else ''}")
    extra = f" ({'; '.join(parts)}; {len(plan.submissions())} Slurm jobs)" if parts else ""
    extra += f" + {joins} join job{'s' if joins != 1 else ''}" if joins else ""
    typer.echo(f"{workflow}: compiled {len(plan.allocations())} allocations{extra} into {out}")


@app.command()
def graph(
    workflow: str = typer.Argument(..., metavar="WORKFLOW.yaml", help="The workflow file."),
    fmt: str = typer.Option("ascii", "--format", "-f", metavar="ascii|dot|mermaid", help="The drawing's format."),
    set_: list[str] = typer.Option([], "--set", metavar="NAME=VALUE", help=_SET_HELP),
) -> None:
    """Draw a workflow's dependency graph with each edge's condition."""
    from slurmdag.views.graph_formats import FORMATS, render_graph

    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    plan = _compile(workflow, set_)
    typer.echo(render_graph(plan, fmt), nl=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the workflow format (for editors: see docs/workflow-format.md)."""
    from slurmdag.compiler.schema import schema_text

    typer.echo(schema_text(), nl=False)


def _compile(workflow: str, sets: list[str], template_dirs: Sequence[Path] = ()) -> Plan:
    """compile_file, with its warnings on stderr (before the errors, if the workflow is refused). The site policy's
    max_allocations is applied while the file is read; its other limits are checked on the plan (validate)."""
    from slurmdag.compiler.compile import compile_file, parse_overrides
    from slurmdag.policy.admission import allocation_cap

    cap = allocation_cap()
    warnings: list[Problem] = []
    try:
        return compile_file(
            workflow,
            parse_overrides(sets),
            template_dirs=template_dirs,
            warnings=warnings,
            max_allocations=cap.value,
            limit_note=cap.note,
            auto_array=cap.auto_array,
        )
    except InputError:
        warnings += cap.warnings  # the policy check on the plan, which would show them, is not reached
        raise
    finally:
        echo_warnings(warnings)


_SYMLINK_DIR = "is a symbolic link: give the directory itself (compile never writes through a symlink)"


def write_plan_dir(plan: Plan, out: Path) -> list[Path]:
    """plan.json and the job scripts; files of earlier compiles that this plan does not name are left alone.

    Never writes through a symbolic link: DIR itself must not be one (refused), and each file is written to a new
    file in DIR and renamed over its name, so a symlink planted there is replaced, its target untouched. Scripts may
    hold env values (secrets): they are created 0700 and plan.json 0600 (less, if the umask says so), and a DIR that
    compile creates is 0700; nothing is made readable by others.
    """
    if out.is_symlink():
        raise UsageError(Problem(_SYMLINK_DIR, str(out)))
    written = []
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        dir_fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for job in plan.jobs:
                written.append(out / _write_private(dir_fd, f"{job.name}.sbatch", job.script, 0o700))
            written.append(out / _write_private(dir_fd, "plan.json", plan.to_json(), 0o600))
        finally:
            os.close(dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:  # DIR became a symlink after the check
            raise UsageError(Problem(_SYMLINK_DIR, str(out))) from None
        raise SlurmdagError(f"cannot write to {out}: {e.strerror or e}") from None
    return written


def _write_private(dir_fd: int, name: str, text: str, mode: int) -> str:
    """Write `name` in the directory `dir_fd` as a new file (O_EXCL, O_NOFOLLOW) renamed over the old name."""
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return name
