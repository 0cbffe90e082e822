"""Commands that talk to Slurm: submit, status, list, cancel."""

from slurmdag.cli import app  # noqa: F401
