"""Submit's withdraw and recover paths and cancel's hold-then-cancel order, at the command boundary: the real
CliBackend and parsers over a fake Slurm that records every command (tests/unit/fake_slurm.py). The same paths run
against the real cluster in tests/integration/test_submit_cluster.py and test_cancel_cluster.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from slurmdag.backends import runner
from slurmdag.backends.cli import CliBackend
from slurmdag.cli import app
from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.render import slurm_job_name
from slurmdag.model.errors import SubmitError
from slurmdag.runs import submit
from slurmdag.runs.cancel import cancel_dag
from slurmdag.runs.cancel_allocations import cancel_allocations
from slurmdag.runs.submit import GATE_NAME, submit_plan
from slurmdag.state.store import CANCELLED, FAILED, SUBMITTED, SUBMITTING, Store

from .fake_slurm import FakeSlurm

# a -> b -> c, a -> d; `handler` runs only if b fails
WORKFLOW = """
name: boundary
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [b]}
  - {name: d, entrypoint: "true", depends_on: [a]}
  - {name: handler, entrypoint: "true", depends_on: [{b: failure}]}
"""


@pytest.fixture
def fake(monkeypatch) -> FakeSlurm:
    slurm = FakeSlurm()
    monkeypatch.setattr(runner, "run_slurm", slurm)
    monkeypatch.setattr(submit, "SUBMIT_WORKERS", 1)  # one sbatch at a time: "the nth sbatch" is well defined
    return slurm


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def plan():
    return compile_text(WORKFLOW, "wf.yaml")


def test_a_refused_sbatch_in_the_middle_withdraws_everything_submitted_and_verifies_it(fake, store):
    fake.refuse_sbatch(4)  # by waves: the gate, a, then b and d; the gate, a and b are accepted, d is refused
    with pytest.raises(SubmitError) as err:
        submit_plan(plan(), store, CliBackend())
    accepted = {j.name: j.job_id for j in fake.jobs.values()}
    assert sorted(accepted) == sorted(slurm_job_name(store.list_records()[0].dag_id, n) for n in (GATE_NAME, "a", "b"))
    # Every job Slurm accepted is recorded, then held (so no failure handler can start), then cancelled with the
    # gate, then read back; nothing after the refusal was submitted and nothing was released.
    record = store.list_records()[0]
    assert record.submission == FAILED and not record.cleanup_pending
    assert set(record.job_ids.values()) | {record.gate_job_id} == set(accepted.values())
    after_refusal = fake.commands()[4:]
    assert "sbatch" not in after_refusal and "scontrol release" not in fake.commands()
    assert after_refusal.index("scontrol hold") < after_refusal.index("scancel") < len(after_refusal) - 1
    assert fake.commands()[-1] == "squeue"  # the read-back that proves it
    assert fake.ids_of("scontrol hold") == [[record.job_ids["a"], record.job_ids["b"]]]  # not the gate: held already
    assert sorted(fake.ids_of("scancel")[0]) == sorted(accepted.values())
    assert set(fake.states().values()) == {"CANCELLED"}
    assert "Slurm refused allocation 'd'" in str(err.value)
    assert "withdrew the gate and 2 submitted job(s)" in str(err.value)


def test_a_refused_gate_submits_nothing_else(fake, store):
    fake.refuse_sbatch(1)
    with pytest.raises(SubmitError, match="Slurm refused the gate job"):
        submit_plan(plan(), store, CliBackend())
    assert fake.commands().count("sbatch") == 1 and not fake.jobs
    assert store.list_records()[0].submission == FAILED


def test_a_clean_submission_releases_the_gate_last(fake, store):
    record = submit_plan(plan(), store, CliBackend())
    assert record.submission == SUBMITTED
    assert fake.commands() == ["sbatch"] * 6 + ["scontrol release"]
    assert fake.ids_of("scontrol release") == [[record.gate_job_id]]
    gate = fake.jobs[record.gate_job_id]
    assert gate.name == slurm_job_name(record.dag_id, GATE_NAME) and not gate.held
    assert fake.jobs[record.job_ids["a"]].dependency == f"afterok:{record.gate_job_id}"


def _crashed_submission(fake: FakeSlurm, store: Store, gate_state: str = "PENDING"):
    """What a submitter killed half-way leaves: a `submitting` record listing the gate and a, and in Slurm also b,
    which sbatch created but the dead process never recorded. Its lock dies with it."""
    record, lock = store.create(plan(), gate_script="#!/bin/sh\nexit 0\n")
    gate = fake.add(slurm_job_name(record.dag_id, GATE_NAME), state=gate_state, held=gate_state == "PENDING")
    a = fake.add(slurm_job_name(record.dag_id, "a"), dependency=f"afterok:{gate}")
    b = fake.add(slurm_job_name(record.dag_id, "b"), dependency=f"afterok:{a}")
    record.gate_job_id, record.job_ids = gate, {"a": a}
    store.save(record)
    lock.release()  # the process is gone: the kernel dropped its flock
    return record.dag_id, gate, a, b


def test_the_next_command_withdraws_a_submission_whose_process_died(fake, store, monkeypatch):
    dag_id, gate, a, b = _crashed_submission(fake, store)
    monkeypatch.setenv("SLURMDAG_HOME", str(store.root))
    result = CliRunner().invoke(app, ["status", dag_id])
    assert result.exit_code == 0, result.output
    assert f"DAG {dag_id}: left half-submitted by process" in result.output
    # The unrecorded job b was found by its name, held with a, and cancelled with the gate; then read back.
    assert "squeue" in fake.commands()[: fake.commands().index("scontrol hold")]  # found by name first
    assert sorted(fake.ids_of("scontrol hold")[0]) == sorted([a, b])
    assert sorted(fake.ids_of("scancel")[0]) == sorted([gate, a, b])
    assert {fake.jobs[j].state for j in (gate, a, b)} == {"CANCELLED"}
    record = store.load(dag_id)
    assert record.submission == FAILED and "the submitting process" in (record.error or "")
    assert "scontrol release" not in fake.commands()


def test_a_submission_that_died_after_releasing_the_gate_is_kept(fake, store):
    dag_id, gate, a, b = _crashed_submission(fake, store, gate_state="COMPLETED")
    from slurmdag.runs.submit import recover_abandoned

    message = recover_abandoned(store, CliBackend(), dag_id)
    assert message is not None and "died after releasing the gate; marked as submitted" in message
    assert "scancel" not in fake.commands() and "scontrol hold" not in fake.commands()
    assert store.load(dag_id).submission == SUBMITTED


def test_a_live_submitter_is_left_alone(fake, store):
    record, lock = store.create(plan(), gate_script="#!/bin/sh\nexit 0\n")
    with lock:  # the submitting process is alive and holds the DAG's lock
        from slurmdag.runs.submit import recover_abandoned

        assert recover_abandoned(store, CliBackend(), record.dag_id) is None
    assert fake.calls == [] and store.load(record.dag_id).submission == SUBMITTING


def _running_dag(fake: FakeSlurm, store: Store) -> tuple[str, dict[str, str]]:
    """A submitted DAG: a running, the others pending behind it."""
    record = submit_plan(plan(), store, CliBackend())
    fake.jobs[record.gate_job_id].state = "COMPLETED"
    fake.jobs[record.job_ids["a"]].state, fake.jobs[record.job_ids["a"]].node_list = "RUNNING", "node1"
    fake.calls.clear()
    return record.dag_id, record.job_ids


def test_cancel_holds_every_pending_job_before_cancelling_and_reads_the_states_back(fake, store):
    dag_id, ids = _running_dag(fake, store)
    outcome = cancel_dag(store, CliBackend(), dag_id)
    commands = fake.commands()
    assert commands.count("scontrol hold") == 1 and commands.count("scancel") == 1
    assert commands.index("scontrol hold") < commands.index("scancel")
    assert commands[commands.index("scancel") + 1] == "squeue"  # scancel's exit 0 proves nothing: read back
    pending = [ids[n] for n in ("b", "c", "d", "handler")]
    assert sorted(fake.ids_of("scontrol hold")[0]) == sorted(pending)  # a already runs: it cannot be held
    gate = store.load(dag_id).gate_job_id
    assert sorted(fake.ids_of("scancel")[0]) == sorted([*ids.values(), gate])  # the gate too: no stray job left
    assert set(fake.states().values()) == {"CANCELLED", "COMPLETED"}  # the gate had completed
    assert store.load(dag_id).submission == CANCELLED and not outcome.still_active


def test_cancel_allocation_holds_its_failure_handler_before_cancelling_it(fake, store):
    dag_id, ids = _running_dag(fake, store)
    fake.jobs[ids["b"]].state, fake.jobs[ids["b"]].node_list = "RUNNING", "node1"
    done = cancel_allocations(store, CliBackend(), dag_id, ["b"])
    assert done.cancelled == ["b"] and done.handlers == ["handler"]
    commands = fake.commands()
    assert commands.index("scontrol hold") < commands.index("scancel")
    assert fake.ids_of("scontrol hold") == [[ids["handler"]]]
    assert sorted(fake.ids_of("scancel")[0]) == sorted([ids["b"], ids["handler"]])
    assert fake.jobs[ids["handler"]].state == "CANCELLED" and fake.jobs[ids["d"]].state == "PENDING"


@pytest.mark.parametrize("option", ["--allocation", "--node"])
def test_cancel_allocation_through_the_cli_and_its_old_name(fake, store, monkeypatch, option):
    dag_id, ids = _running_dag(fake, store)
    fake.jobs[ids["b"]].state, fake.jobs[ids["b"]].node_list = "RUNNING", "node1"
    monkeypatch.setenv("SLURMDAG_HOME", str(store.root))
    result = CliRunner().invoke(app, ["cancel", dag_id, option, "b"])
    assert result.exit_code == 0, result.output
    assert f"DAG {dag_id}: cancelled b; failure handlers not started: handler" in result.output
    assert sorted(fake.ids_of("scancel")[0]) == sorted([ids["b"], ids["handler"]])


def test_cancel_help_names_allocation_not_its_old_name():
    result = CliRunner().invoke(app, ["cancel", "--help"])
    assert "--allocation" in result.output and "--node" not in result.output
