"""Concurrent submission by waves: every parent is in an earlier wave, and a failed wave records what Slurm took."""

from __future__ import annotations

import threading

import pytest

from slurmdag.model.plan import Dependency, DependencyTerm, Plan, PlannedJob
from slurmdag.runs import submit
from slurmdag.runs.submit import SignalGuard, submission_waves, submit_wave


def _job(name: str, *parents: str, join: str = "all") -> PlannedJob:
    dep = Dependency(join, tuple(DependencyTerm("afterok", p) for p in parents)) if parents else None
    return PlannedJob(name, "allocation", {}, "#!/bin/sh\n", dependency=dep)


def _names(waves):
    return [[j.name for j in w] for w in waves]


def test_waves_put_every_parent_in_an_earlier_wave():
    plan = Plan(
        "w",
        [_job("a"), _job("b", "a"), _job("c"), _job("d", "b", "c"), _job("e", "a", "d", join="any"), _job("f", "c")],
    )
    assert _names(submission_waves(plan)) == [["a", "c"], ["b", "f"], ["d"], ["e"]]


def test_a_chain_is_one_job_per_wave_and_a_fan_is_three_waves():
    chain = Plan("c", [_job("c0")] + [_job(f"c{i}", f"c{i - 1}") for i in range(1, 5)])
    assert _names(submission_waves(chain)) == [["c0"], ["c1"], ["c2"], ["c3"], ["c4"]]
    fan = Plan("f", [_job("r")] + [_job(f"w{i}", "r") for i in range(6)] + [_job("s", *[f"w{i}" for i in range(6)])])
    assert [len(w) for w in submission_waves(fan)] == [1, 6, 1]


def test_a_parent_outside_the_plan_counts_as_submitted():
    # resume/redo submit a sub-plan whose roots wait on jobs of an earlier attempt
    plan = Plan("r", [_job("x", "done-before"), _job("y", "x")])
    assert _names(submission_waves(plan)) == [["x"], ["y"]]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_failed_wave_records_every_job_slurm_accepted_and_reports_the_first_failure(monkeypatch, workers):
    monkeypatch.setattr(submit, "SUBMIT_WORKERS", workers)
    wave = [_job(f"w{i}") for i in range(12)]
    calls = []
    lock = threading.Lock()

    def fake_sbatch(job):
        with lock:
            calls.append(job.name)
        if job.name in ("w5", "w7"):
            raise RuntimeError(f"refused {job.name}")
        return str(1000 + int(job.name[1:]))

    ids: dict[str, str] = {}
    failed = submit_wave(wave, fake_sbatch, ids, SignalGuard())
    assert failed is not None and failed[0].name == "w5" and "w5" in str(failed[1])
    accepted = [n for n in calls if n not in ("w5", "w7")]
    assert sorted(ids) == sorted(accepted) and "w5" not in ids
    assert {f"w{i}" for i in range(5)} <= set(ids)  # every job before the failure was submitted
    assert list(ids) == [j.name for j in wave if j.name in ids]  # plan order
    # after the failure no new sbatch starts: at most the ones already in flight follow it
    assert len(calls) <= 6 + workers


def test_a_signal_stops_new_sbatch_calls_in_the_wave(monkeypatch):
    monkeypatch.setattr(submit, "SUBMIT_WORKERS", 1)  # one at a time, so "new" is well defined
    guard = SignalGuard()
    ids: dict[str, str] = {}

    def sbatch(job):
        guard._handle(15, None)  # SIGTERM arrives during the first sbatch
        return "1"

    assert submit_wave([_job("a"), _job("b"), _job("c")], sbatch, ids, guard) is None
    assert list(ids) == ["a"]
