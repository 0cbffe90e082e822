"""The pyslurm backend and a full job table (MaxJobCount), as the CLI backend handles it: pre-flight counts the table
from the same Jobs.load() it reads the user's queue from, and slurmctld's "try again later" answers to a submission
(EAGAIN, ESLURM_ERROR_ON_DESC_TO_RECORD_COPY), which sbatch retries by itself and pyslurm does not, become
JobTableFullError, which the submission waits out. On the real cluster: test_job_table_full_cluster.py through
pyslurm."""

from __future__ import annotations

import types
from datetime import datetime, timedelta

import pytest

from slurmdag.backends.pyslurm_backend import PyslurmBackend, job_table
from slurmdag.model.errors import JobTableFullError, SlurmCommandError


class _RPCError(Exception):
    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(msg)
        self.errno = errno
        self.msg = msg


def _backend() -> PyslurmBackend:
    backend = object.__new__(PyslurmBackend)
    backend._ps = types.SimpleNamespace(RPCError=_RPCError)
    return backend


def _refuse(errno: int, msg: str):
    def action():
        raise _RPCError(errno, msg)

    return action


@pytest.mark.parametrize("errno", [11, 2007])
def test_a_submission_refused_for_a_full_table_is_a_job_table_full_error(errno):
    with pytest.raises(JobTableFullError) as caught:
        _backend()._call(["sbatch", "--parsable", "x.sbatch"], _refuse(errno, "Resource temporarily unavailable"))
    assert caught.value.returncode == errno  # an answer: no job was made, so trying again cannot make a second
    assert "job table is full" in str(caught.value)


def test_the_same_errno_from_another_call_is_not_called_a_full_table():
    with pytest.raises(SlurmCommandError) as caught:
        _backend()._call(["scontrol", "release", "12"], _refuse(11, "Resource temporarily unavailable"))
    assert not isinstance(caught.value, JobTableFullError)


def _job(state: str, end: int = 0, array_id=None, task=None, waiting=None):
    return types.SimpleNamespace(
        id=7,
        name="j",
        state=state,
        state_reason=None,
        allocated_nodes=None,
        run_time=0,
        start_time=0,
        end_time=end,
        array_id=array_id,
        array_task_id=task,
        array_tasks_waiting=waiting,
    )


def test_the_job_table_counts_rows_as_squeue_r_does_and_when_finished_ones_ended():
    now = datetime.now().astimezone().replace(microsecond=0)
    early, late = int((now - timedelta(seconds=90)).timestamp()), int((now - timedelta(seconds=10)).timestamp())
    jobs = [
        _job("COMPLETED", late),
        _job("PENDING", array_id=40, waiting="0-4"),  # one record, five entries of the table
        _job("CANCELLED", early, array_id=41, task=3),
        _job("RUNNING"),
    ]
    table = job_table(jobs, now)
    assert table.held == 1 + 5 + 1 + 1
    assert table.finished_ends == (now - timedelta(seconds=90), now - timedelta(seconds=10))
    assert table.read_at == now
