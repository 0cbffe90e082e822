"""`slurmdag import`: port existing sbatch scripts and bash sbatch chains to a workflow YAML."""

from __future__ import annotations

import os

import typer

from slurmdag.cli import app
from slurmdag.model.errors import InputError, Problem


@app.command("import")
def import_command(
    scripts: list[str] = typer.Argument(..., metavar="SCRIPT...", help="Bash chains calling sbatch, or batch scripts."),
    output: str | None = typer.Option(
        None, "-o", "--output", metavar="FILE", help="Write the workflow YAML here (default: stdout)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the YAML instead of writing it."),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Workflow name (default: the first file's name)."
    ),
) -> None:
    """Translate sbatch scripts / bash chains into a slurmdag workflow; what cannot be translated is listed."""
    from slurmdag.porting.importer import import_files  # a large module only this command needs

    result = import_files(scripts, output, name=name)
    text = result.to_yaml()
    if output and not dry_run:
        if os.path.exists(output) and os.path.isdir(output):
            raise InputError(Problem("is a directory", output, hint="give a file name, e.g. -o workflow.yaml"))
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        typer.echo(text, nl=False)
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)
    n = len(result.workflow["allocations"])
    where = f" to {output}" if output and not dry_run else ""
    summary = f"translated {n} allocation(s){where}"
    if result.warnings:
        summary += f" with {len(result.warnings)} warning(s): review them before submitting"
    typer.echo(summary, err=True)
