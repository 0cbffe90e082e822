"""slurmdag: turn a workflow DAG into native Slurm dependency chains, submitted all at once."""

__version__ = "0.1.0"
