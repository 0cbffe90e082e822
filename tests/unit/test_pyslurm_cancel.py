"""The pyslurm backend's cancel on pyslurm 25.11 (no `slurm_kill_job2`): whole jobs through `Job(id).cancel()`, array
tasks through one scancel, because a task of an array still pending as one record has no job id of its own (the
25.11 pyslurm pass of test_semantics_cluster.py's reconciler rows waited forever on such a task)."""

from __future__ import annotations

import types

from slurmdag.backends import runner
from slurmdag.backends.pyslurm_backend import PyslurmBackend


class _RPCError(Exception):
    def __init__(self, errno: int) -> None:
        super().__init__("rpc")
        self.errno = errno


def _backend(cancelled: list[int], kill_job2=None) -> PyslurmBackend:
    class Job:
        def __init__(self, job_id: int) -> None:
            self.id = job_id

        def cancel(self) -> None:
            if self.id == 404:
                raise _RPCError(2017)  # ESLURM_INVALID_JOB_ID: not an error, as for scancel
            cancelled.append(self.id)

    fake = types.SimpleNamespace(Job=Job, RPCError=_RPCError)
    if kill_job2 is not None:
        fake.slurm_kill_job2 = kill_job2
    backend = object.__new__(PyslurmBackend)
    backend._ps = fake
    return backend


def test_new_api_cancels_jobs_by_id_and_array_tasks_in_one_scancel(monkeypatch):
    commands: list[list[str]] = []
    monkeypatch.setattr(runner, "run_slurm", lambda argv, **_: commands.append(argv))
    cancelled: list[int] = []
    _backend(cancelled).cancel(["12", "190_0", "12", "404", "190_1", "33"])
    assert cancelled == [12, 33]
    assert commands == [["scancel", "190_0", "190_1"]]


def test_old_api_sends_every_id_as_is_through_pyslurm(monkeypatch):
    commands: list[list[str]] = []
    monkeypatch.setattr(runner, "run_slurm", lambda argv, **_: commands.append(argv))
    killed: list[bytes] = []
    _backend([], kill_job2=lambda job_id, signal, flags: killed.append(job_id)).cancel(["12", "190_0"])
    assert killed == [b"12", b"190_0"] and commands == []
