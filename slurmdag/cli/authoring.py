"""Commands that need no Slurm: validate, compile, graph."""

from slurmdag.cli import app  # noqa: F401
