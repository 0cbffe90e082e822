"""Adapters to Slurm behind one interface (`base.Backend`); `cli` is the default."""

from __future__ import annotations

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.backends.cluster_info import ClusterInfo


def default_backend() -> Backend:
    from slurmdag.backends.cli import CliBackend

    return CliBackend()


__all__ = ["Backend", "ClusterInfo", "JobInfo", "default_backend"]
