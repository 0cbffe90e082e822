"""Fault paths of issue 17 at the command boundary (Slurm replaced by tests/unit/fake_slurm.py): a released gate
that waits on a busy cluster is never withdrawn (defect 3); damaged records are named and never hide the others
(defect 6); unknown DAGs and an absent Slurm are one clean message each (defect 8). The same faults on the real
cluster: tests/integration/test_faults_cluster.py."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sys
from datetime import datetime, timedelta

import pytest

from slurmdag.backends import runner
from slurmdag.backends.base import JobInfo
from slurmdag.backends.cli import CliBackend
from slurmdag.backends.cluster_info import JobTable
from slurmdag.cli import main
from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.render import Submission
from slurmdag.model.errors import CorruptRecordError, StoreError, SubmitError
from slurmdag.policy import admission, preflight
from slurmdag.runs import submit
from slurmdag.runs.status import list_dags
from slurmdag.state.store import FAILED, SUBMITTED, SUBMITTING, Store
from tests.unit.fake_slurm import FakeSlurm

WF = """\
name: faults
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [a]}
"""


@pytest.fixture
def slurm(monkeypatch) -> FakeSlurm:
    fake = FakeSlurm(next_id=500)
    monkeypatch.setattr(runner, "run_slurm", fake)
    return fake


def calls_of(fake: FakeSlurm, program: str) -> list[list[str]]:
    return [argv for argv in fake.calls if argv[0] == program]


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setenv("SLURMDAG_HOME", str(tmp_path / "home"))
    return Store(tmp_path / "home")


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["slurmdag", *args])
    with pytest.raises(SystemExit) as ex:
        main()
    out = capsys.readouterr()
    return int(ex.value.code or 0), out.out, out.err


def _row(state: str, reason: str | None, name: str = "sd-0000abcd-+gate") -> JobInfo:
    return JobInfo("7", "7", None, name, state, reason)


# --- defect 3: tell a held gate from a released one ---


@pytest.mark.parametrize(
    "row, verdict",
    [
        (_row("PENDING", "JobHeldUser"), "held"),
        (_row("PENDING", "JobHeldAdmin"), "held"),
        (_row("PENDING", "Resources"), "released"),
        (_row("PENDING", "Priority"), "released"),
        (_row("RUNNING", None), "released"),
        (_row("COMPLETED", None), "released"),
        (_row("CANCELLED", None), "ended"),
        (None, "gone"),
    ],
)
def test_gate_verdict_reads_the_pending_reason(row, verdict):
    assert submit.gate_verdict(row) == verdict


def _submit_whose_last_save_fails(store: Store, slurm: FakeSlurm, monkeypatch) -> str:
    """A submission that released its gate, then could not save `submitted` (full disk, a crash right there)."""
    real_save = Store.save

    def save(self, record, durable=True):
        if record.submission == SUBMITTED:
            raise StoreError("cannot write the record: No space left on device")
        real_save(self, record, durable)

    monkeypatch.setattr(Store, "save", save)
    before = {r.dag_id for r in store.list_records()}
    with pytest.raises(StoreError):
        submit.submit_plan(compile_text(WF), store, CliBackend())
    monkeypatch.setattr(Store, "save", real_save)
    (record,) = [r for r in store.list_records() if r.dag_id not in before]
    assert record.submission == SUBMITTING and len(record.job_ids) == 3
    return record.dag_id


def test_a_released_gate_still_pending_on_a_busy_cluster_is_recognised_as_submitted(store, slurm, monkeypatch):
    slurm.busy = True  # every CPU taken: the released gate waits with Reason=Resources
    dag_id = _submit_whose_last_save_fails(store, slurm, monkeypatch)
    gate = store.load(dag_id).gate_job_id
    assert slurm.jobs[gate].state == "PENDING" and slurm.jobs[gate].reason == "Resources"
    before = len(slurm.calls)

    listing = list_dags(store, CliBackend())

    assert not calls_of(slurm, "scancel") and not calls_of(slurm, "scontrol")[1:]  # only the submit's release
    assert store.load(dag_id).submission == SUBMITTED
    assert all(j.state == "PENDING" for j in slurm.jobs.values())  # nothing withdrawn: the DAG will run
    (note,) = listing.dags[0].notes
    assert "after releasing the gate" in note and "Resources" in note, note
    # the gate was read together with the rest: one squeue for the recovery, one squeue + one sacct for the list
    assert [c[0] for c in slurm.calls[before:]] == ["squeue", "squeue", "sacct"]


def test_a_gate_still_held_is_withdrawn_with_every_job(store, slurm):
    plan = compile_text(WF)
    record, lock = store.create(plan, scripts=lambda dag: submit.submission_scripts(plan, Submission(dag)))
    with lock:  # what a SIGKILL after two of three sbatch calls leaves on disk
        backend = CliBackend()
        record.gate_job_id = backend.submit("gate", ["--hold", f"--job-name=sd-{record.dag_id}-+gate"])
        for name in ("a", "b"):
            record.job_ids[name] = backend.submit(name, [f"--job-name=sd-{record.dag_id}-{name}"])
        store.save(record)

    note = submit.recover_abandoned(store, backend, record.dag_id)

    assert note is not None and "cancelled its gate and 2 waiting job(s)" in note, note
    assert store.load(record.dag_id).submission == FAILED
    assert {j.state for j in slurm.jobs.values()} == {"CANCELLED"}
    hold = calls_of(slurm, "scontrol")[0]
    assert hold[:2] == ["scontrol", "hold"] and slurm.calls.index(hold) < slurm.calls.index(
        calls_of(slurm, "scancel")[0]
    )


def test_many_abandoned_submissions_cost_one_squeue_for_their_gates(store, slurm, monkeypatch):
    slurm.busy = True
    ids = [_submit_whose_last_save_fails(store, slurm, monkeypatch) for _ in range(3)]
    slurm.calls.clear()
    done = submit.recover_abandoned_many(store, CliBackend(), ids)
    assert sorted(done) == sorted(ids)
    squeues = calls_of(slurm, "squeue")
    assert len(squeues) == 1, squeues
    assert sorted(squeues[0][squeues[0].index("-j") + 1].split(",")) == sorted(store.load(i).gate_job_id for i in ids)


# --- defect 6: a damaged record is named, and never hides the others ---

DAMAGE = {
    "an empty list": "[]",
    "null": "null",
    "not JSON": "{ this is not json",
    "a bad created": None,  # filled in below from a good record
    "bad job_ids": None,
    "a job id that is a list": None,
}


def _damage(record_text: str, how: str) -> str:
    data = json.loads(record_text)
    if how == "a bad created":
        data["created"] = "yesterday"
    elif how == "bad job_ids":
        data["job_ids"] = ["a", "b"]
    elif how == "a job id that is a list":
        data["job_ids"] = {"a": [1, 2]}
    else:
        return DAMAGE[how] or ""
    return json.dumps(data)


def _stored(store: Store, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        record, lock = store.create(compile_text(WF))
        with lock:
            record.submission = SUBMITTED
            record.final_state = "Completed"
            store.save(record)
        ids.append(record.dag_id)
    return ids


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_record_is_a_clean_error_and_list_shows_the_others(how, store, slurm, monkeypatch, capsys):
    good, bad = _stored(store, 2)
    path = store.dag_dir(bad) / "dag.json"
    path.write_text(_damage(path.read_text(), how))

    with pytest.raises(CorruptRecordError) as ex:
        store.load(bad)
    assert str(path) in str(ex.value) and "Traceback" not in str(ex.value)

    listing = list_dags(store, CliBackend())
    assert [d.record.dag_id for d in listing.dags] == [good]
    assert [e.path for e in listing.unreadable] == [str(path)]

    rc, out, err = cli(monkeypatch, capsys, "list")
    assert rc == 1 and good in out and bad not in out, (out, err)
    assert str(path) in err and "Traceback" not in err

    rc, out, err = cli(monkeypatch, capsys, "status", bad)
    assert rc == 1 and str(path) in err and "not a readable slurmdag record" in err, err
    assert err.count("\n") <= 3 and "Traceback" not in err


def test_a_damaged_plan_is_named_by_list_too(store, slurm, monkeypatch, capsys):
    good, bad = _stored(store, 2)
    for dag_id in (good, bad):
        store.update(dag_id, lambda r: setattr(r, "final_state", None), blocking=True)
    (store.dag_dir(bad) / "plan.json").write_text("[]")
    rc, out, err = cli(monkeypatch, capsys, "list")
    assert rc == 1 and good in out and "plan.json" in err, (out, err)


# --- defect 8: unknown DAGs, absent Slurm ---


@pytest.mark.parametrize("command", ["status", "cancel"])
def test_a_dag_neither_the_store_nor_slurm_knows_is_unknown_exit_2(command, store, slurm, monkeypatch, capsys):
    _stored(store, 1)
    rc, out, err = cli(monkeypatch, capsys, command, "deadbeef")
    assert rc == 2 and "unknown DAG 'deadbeef'" in err and "slurmdag list --all" in err, err


@pytest.mark.parametrize("command", [["status", "deadbeef"], ["list"], ["cancel", "deadbeef"]])
def test_an_unreachable_controller_is_one_line(command, store, slurm, monkeypatch, capsys):
    ids = _stored(store, 1)

    def active(record):
        record.final_state = None
        record.job_ids = {"a": "101", "b": "102", "c": "103"}

    store.update(ids[0], active, blocking=True)
    slurm.controller_down = True
    rc, out, err = cli(monkeypatch, capsys, *command)
    assert rc == 1 and err.strip().count("\n") == 0, err
    assert err.startswith("the Slurm controller (slurmctld) is not answering"), err


# --- defect 4: a hang-up (SSH disconnect) during submit finishes the submission ---

FAN = "name: fan\nallocations:\n  - {name: root, entrypoint: 'true'}\n" + "".join(
    f"  - {{name: w{i}, entrypoint: 'true', depends_on: [root]}}\n" for i in range(8)
)


class _KilledByHangup(Exception):
    """What SIGHUP's default action would have done: if this escapes, the hang-up was not handled."""


@pytest.fixture
def hangup_would_kill():
    def die(_signum, _frame):
        raise _KilledByHangup()

    previous = signal.signal(signal.SIGHUP, die)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("at", [1, 2, 5, 10])  # the gate, the root, the middle of the wide wave, the last job
def test_a_hangup_mid_submit_finishes_the_submission(at, store, slurm, hangup_would_kill):
    slurm.on_sbatch = lambda argv, n: os.kill(os.getpid(), signal.SIGHUP) if n == at else None
    record = submit.submit_plan(compile_text(FAN), store, CliBackend())

    assert record.submission == SUBMITTED and len(record.job_ids) == 9
    assert len(calls_of(slurm, "sbatch")) == 10 and not calls_of(slurm, "scancel")
    assert [c[:2] for c in calls_of(slurm, "scontrol")] == [["scontrol", "release"]]  # the gate, last
    assert slurm.calls[-1][:2] == ["scontrol", "release"] or "release" in slurm.calls[-1]
    assert {j.state for j in slurm.jobs.values()} == {"PENDING"} and not any(j.held for j in slurm.jobs.values())
    assert store.load(record.dag_id).submission == SUBMITTED
    assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL  # the caller's handler is back


def test_sigterm_still_withdraws(store, slurm, hangup_would_kill):
    """The contrast: an explicit stop (SIGTERM) withdraws everything, as before."""
    slurm.on_sbatch = lambda argv, n: os.kill(os.getpid(), signal.SIGTERM) if n == 5 else None
    with pytest.raises(SubmitError) as ex:
        submit.submit_plan(compile_text(FAN), store, CliBackend())
    assert "SIGTERM" in str(ex.value)
    assert calls_of(slurm, "scancel") and {j.state for j in slurm.jobs.values()} == {"CANCELLED"}


def test_a_hangup_during_the_submit_command_finishes_it_and_exits_quietly(
    store, slurm, monkeypatch, tmp_path, hangup_would_kill
):
    """Through the CLI: a hang-up while the cluster is read (before any sbatch) and another in the middle; the
    terminal is gone, so writing the result fails (EIO) and the command ends quietly with the DAG submitted."""
    wf = tmp_path / "fan.yaml"
    wf.write_text(FAN)
    sent = []

    def hang_up(argv: list[str]) -> None:
        if argv[:3] == ["scontrol", "show", "config"] or (argv[0] == "sbatch" and len(calls_of(slurm, "sbatch")) == 4):
            sent.append(argv[0])
            os.kill(os.getpid(), signal.SIGHUP)

    slurm.on_call = hang_up

    def gone(*_a, **_k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("slurmdag.cli.running.typer.echo", gone)
    monkeypatch.setattr(sys, "argv", ["slurmdag", "submit", str(wf)])
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main() points them at /dev/null: put them back afterwards
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    previous = signal.getsignal(signal.SIGHUP)
    with pytest.raises(SystemExit) as ex:
        main()
    assert sent == ["scontrol", "sbatch"]
    assert ex.value.code == 1
    (record,) = store.list_records()
    assert record.submission == SUBMITTED and len(record.job_ids) == 9
    assert not calls_of(slurm, "scancel") and ["scontrol", "release", record.gate_job_id] in slurm.calls
    assert signal.getsignal(signal.SIGHUP) == previous


# --- slurmdbd away: a job slurmctld no longer holds is Unknown, never Completed; the reconciler does not act ---

HANDLER = """\
name: handler
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [{a: failure}]}
  - {name: c, entrypoint: "true", depends_on: [a]}
"""


def _finished_parent_purged(store: Store, slurm: FakeSlurm, cascade: str = "reconciler") -> tuple[str, dict]:
    """A DAG whose `a` completed long ago (purged from slurmctld, still in accounting); its failure handler `b` is
    left pending on DependencyNeverSatisfied (a --cascade reconciler DAG: Slurm does not cancel it), `c` is running."""
    plan = compile_text(HANDLER)
    record, lock = store.create(plan)
    with lock:
        record.submission, record.cascade = SUBMITTED, cascade
        record.gate_job_id = slurm.add(f"sd-{record.dag_id}-+gate", "COMPLETED")
        ids = {
            "a": slurm.add(f"sd-{record.dag_id}-a", "COMPLETED"),
            "b": slurm.add(f"sd-{record.dag_id}-b", "PENDING", dependency="afternotok:x"),
            "c": slurm.add(f"sd-{record.dag_id}-c", "RUNNING"),
        }
        slurm.jobs[ids["b"]].waiting_for = "DependencyNeverSatisfied"
        record.job_ids = ids
        store.save(record)
    slurm.purged |= {record.gate_job_id, ids["a"]}
    return record.dag_id, ids


def test_with_slurmdbd_away_a_purged_job_is_unknown_never_completed(store, slurm, monkeypatch, capsys):
    dag, ids = _finished_parent_purged(store, slurm)
    slurm.accounting_down = True
    rc, out, err = cli(monkeypatch, capsys, "status", dag, "--json")
    assert rc == 0, err
    status = json.loads(out)
    states = {a["name"]: a["state"] for a in status["allocations"]}
    assert states == {"a": "Unknown", "b": "Pending", "c": "Running"}, states
    assert "slurmdbd" in err and "Unknown" in err
    assert store.load(dag).final_state is None  # a provisional view is never cached

    rc, out, err = cli(monkeypatch, capsys, "list", "--json")
    assert rc == 0 and store.load(dag).final_state is None

    slurm.accounting_down = False  # accounting answers again: the truth comes back
    rc, out, err = cli(monkeypatch, capsys, "status", dag, "--json")
    states = {a["name"]: a["state"] for a in json.loads(out)["allocations"]}
    assert rc == 0 and states["a"] == "Completed", states


def test_with_slurmdbd_away_the_reconciler_acts_on_no_unknown(store, slurm, monkeypatch, capsys):
    dag, ids = _finished_parent_purged(store, slurm)
    slurm.accounting_down = True
    rc, out, err = cli(monkeypatch, capsys, "reconcile", "--once")
    assert rc == 1 and "slurmdbd" in err and dag in err, err
    assert not calls_of(slurm, "scancel") and slurm.jobs[ids["b"]].state == "PENDING"

    slurm.accounting_down = False  # back: `a` Completed, so the failure handler `b` can never run
    rc, out, err = cli(monkeypatch, capsys, "reconcile", "--once")
    assert rc == 0, err
    assert [c[1:] for c in calls_of(slurm, "scancel")] == [[ids["b"]]]
    assert slurm.jobs[ids["b"]].state == "CANCELLED" and slurm.jobs[ids["c"]].state == "RUNNING"


def test_with_slurmctld_away_status_fails_in_one_line_and_concludes_nothing(store, slurm, monkeypatch, capsys):
    dag, _ = _finished_parent_purged(store, slurm)
    slurm.controller_down = True
    rc, out, err = cli(monkeypatch, capsys, "status", dag)
    assert rc == 1 and err.startswith("the Slurm controller (slurmctld) is not answering"), err
    rc, out, err = cli(monkeypatch, capsys, "reconcile", "--once")
    assert rc == 1 and not calls_of(slurm, "scancel")
    assert store.load(dag).final_state is None


# --- defect 9: a full job table is not "Slurm unreachable" ---


def _table(held: int, ended_ago: list[float], now: datetime) -> JobTable:
    return JobTable(held, tuple(sorted(now - timedelta(seconds=a) for a in ended_ago)), now)


def test_room_in_the_job_table_counts_what_slurmctld_holds_and_when_finished_jobs_leave():
    now = datetime.now().astimezone()
    # MaxJobCount 100: 99 fit. 90 held, 9 free.
    assert preflight.job_table_room(9, _table(90, [], now), 100, 300).fits
    assert not preflight.job_table_room(10, _table(90, [], now), 100, 300).fits
    # 1 short; the oldest finished job ended 200 s ago and leaves at 300 s: in 100 s
    room = preflight.job_table_room(10, _table(90, [200, 100], now), 100, 300)
    assert not room.fits and room.free == 9 and room.wait == pytest.approx(100, abs=1)
    # 2 short: the second oldest ended 100 s ago: in 200 s
    assert preflight.job_table_room(11, _table(90, [200, 100], now), 100, 300).wait == pytest.approx(200, abs=1)
    # 3 short, only 2 finished: purges alone never make room
    assert preflight.job_table_room(12, _table(90, [200, 100], now), 100, 300).wait is None
    # overdue (slurmctld purges in passes): due now, but not there yet
    overdue = preflight.job_table_room(10, _table(90, [400], now), 100, 300)
    assert not overdue.fits and overdue.wait == 0


@pytest.fixture
def small_table(slurm):
    """The test cluster's recorded config with MaxJobCount 50 (49 jobs fit) and MinJobAge 300."""
    slurm.config.update(MaxJobCount="50", MinJobAge="300 sec")
    return slurm


def _fan_file(tmp_path) -> str:
    wf = tmp_path / "fan.yaml"
    wf.write_text(FAN)  # 9 allocations + the gate: 10 jobs
    return str(wf)


def test_preflight_says_how_full_the_job_table_is_and_when_room_frees_up(
    store, small_table, monkeypatch, capsys, tmp_path
):
    small_table.fill_table(40, "COMPLETED", ended_ago=250)  # leave in ~50 s
    small_table.fill_table(5, "RUNNING")
    rc, out, err = cli(monkeypatch, capsys, "submit", _fan_file(tmp_path), "--dry-run")
    assert rc == 0, err
    assert "Slurm's job table holds 45 of MaxJobCount 50 jobs (40 finished" in out, out
    assert "room for 4, the DAG needs 10" in out
    waited = re.search(r"pre-flight: OK \(after waiting about (\d+) s\)", out)
    assert waited and 45 <= int(waited.group(1)) <= 51, out  # the oldest finished jobs leave 300 s after their end
    assert not calls_of(small_table, "sbatch")[1:]  # `sbatch --help` only


def test_submit_waits_for_finished_jobs_to_leave_the_table_then_submits(
    store, small_table, monkeypatch, capsys, tmp_path
):
    small_table.fill_table(40, "COMPLETED", ended_ago=250)
    small_table.fill_table(5, "RUNNING")
    slept = []

    def sleep(seconds):  # time passes: slurmctld's purge pass removes the finished jobs
        slept.append(seconds)
        small_table.purge_finished()

    monkeypatch.setattr(admission.time, "sleep", sleep)
    rc, out, err = cli(monkeypatch, capsys, "submit", _fan_file(tmp_path))
    assert rc == 0, err
    assert re.search(r"waiting about (4[5-9]|5[01]) s", err) and "nothing is submitted meanwhile" in err, err
    assert slept and slept[0] == pytest.approx(50, abs=2)
    first_sbatch = next(i for i, c in enumerate(small_table.calls) if c[0] == "sbatch" and "--help" not in c)
    rereads = [c for c in small_table.calls[:first_sbatch] if c[:2] == ["squeue", "-h"] and "all" in c]
    assert len(rereads) == 2  # pre-flight's read, then the table alone once the jobs were due to leave
    (record,) = store.list_records()
    assert record.submission == SUBMITTED and len(record.job_ids) == 9


@pytest.mark.parametrize(
    "ended_ago, expected",
    [
        (10, r"room frees up in about 2[89]\d s \(around \d\d:\d\d:\d\d\)"),  # ~290 s: beyond the bound
        (None, r"room frees up only as running and pending jobs end"),  # nothing finished
    ],
)
def test_no_room_within_the_bound_is_said_and_nothing_is_submitted(
    ended_ago, expected, store, small_table, monkeypatch, capsys, tmp_path
):
    monkeypatch.setattr(preflight, "JOB_TABLE_WAIT", 60.0)
    if ended_ago is None:
        small_table.fill_table(45, "RUNNING")
    else:
        small_table.fill_table(45, "COMPLETED", ended_ago=ended_ago)
    rc, out, err = cli(monkeypatch, capsys, "submit", _fan_file(tmp_path))
    assert rc == 1 and re.search(expected, err) and "nothing was submitted" in err, err
    assert "unreachable" not in err and "not answering" not in err
    assert [c for c in calls_of(small_table, "sbatch") if "--help" not in c] == [] and not store.list_records()


def test_sbatch_told_the_table_is_full_waits_and_the_submission_completes(store, slurm, monkeypatch):
    monkeypatch.setattr(submit.TableFullWait, "PAUSE", 0.0)
    slurm.on_sbatch = lambda argv, n: setattr(slurm, "table_full", 2) if n == 3 else None  # two refusals mid-DAG
    record = submit.submit_plan(compile_text(FAN), store, CliBackend())
    assert record.submission == SUBMITTED and len(record.job_ids) == 9
    assert not calls_of(slurm, "scancel")
    names = [next(o for o in c if o.startswith("--job-name=")) for c in calls_of(slurm, "sbatch")]
    assert len(names) == 12 and len(set(names)) == 10  # every job once in Slurm: the refused calls were retried


def test_a_table_that_stays_full_is_withdrawn_as_such_not_as_unreachable(store, slurm, monkeypatch):
    monkeypatch.setattr(submit.TableFullWait, "PAUSE", 0.01)
    monkeypatch.setattr(submit, "JOB_TABLE_WAIT", 0.3)
    slurm.on_sbatch = lambda argv, n: setattr(slurm, "table_full", 10**6) if n == 4 else None
    with pytest.raises(SubmitError) as ex:
        submit.submit_plan(compile_text(FAN), store, CliBackend())
    message = str(ex.value)
    assert "job table (MaxJobCount) stayed full" in message and "unreachable" not in message, message
    assert calls_of(slurm, "scancel") and {j.state for j in slurm.jobs.values()} == {"CANCELLED"}


@pytest.mark.parametrize("created", [False, True], ids=["before-it-ran", "after-its-job-was-made"])
def test_an_sbatch_killed_by_a_hang_up_is_found_or_submitted_again_never_twice(store, slurm, created):
    """ssh drops mid-submit: SIGHUP reaches slurmdag's process group, and an sbatch child between fork and setsid()
    is still in it (CI saw one die: exit -1, and the DAG was withdrawn). Its job is looked up by name, and submitted
    again only when it does not exist: the DAG is submitted whole, each job once."""
    slurm.killed_sbatch = {4: created}
    record = submit.submit_plan(compile_text(FAN), store, CliBackend())
    assert record.submission == SUBMITTED and len(record.job_ids) == 9
    assert not calls_of(slurm, "scancel")
    names = [j.name for j in slurm.jobs.values()]
    assert len(names) == 10 and len(set(names)) == 10  # the gate and 9 jobs, none twice
    assert len(calls_of(slurm, "sbatch")) == (10 if created else 11)


def test_an_sbatch_killed_again_and_again_withdraws_the_dag(store, slurm):
    slurm.killed_sbatch = {n: False for n in range(3, 10)}
    with pytest.raises(SubmitError):
        submit.submit_plan(compile_text(FAN), store, CliBackend())
    assert {j.state for j in slurm.jobs.values()} == {"CANCELLED"}
