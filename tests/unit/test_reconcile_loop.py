"""The reconciler's loop around the pure planner: lock, one query per pass, errors retried, back-off.
A fake backend stands in for Slurm (the real thing is tested in tests/integration/test_reconcile_cluster.py)."""

from __future__ import annotations

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import SlurmUnavailableError
from slurmdag.runs import reconcile
from slurmdag.state.store import SUBMITTED, Store

WF = """\
name: t
allocations:
  - {name: a, entrypoint: "true"}
  - {name: b, entrypoint: "true", depends_on: [a]}
  - {name: c, entrypoint: "true", depends_on: [b]}
"""


class FakeSlurm(Backend):
    def __init__(self, rows):
        self.rows = rows  # job id -> (state, reason)
        self.queries = 0
        self.cancelled: list[list[str]] = []
        self.down = False

    def query(self, job_ids, since=None):
        self.queries += 1
        if self.down:
            raise SlurmUnavailableError(["squeue"], 1, "", "Unable to contact slurm controller")
        out = {}
        for j in job_ids:
            if j in self.rows:
                state, reason = self.rows[j]
                out[j] = JobInfo(
                    j,
                    j,
                    None,
                    self.names[j],
                    state,
                    reason,
                    node_list="n1" if state not in ("PENDING", "CANCELLED") else None,
                )
        return out

    def cancel(self, job_ids):
        self.cancelled.append(list(job_ids))
        for j in job_ids:
            self.rows[j] = ("CANCELLED", "DependencyNeverSatisfied")

    def submit(self, script, options, directives=None):
        raise AssertionError

    def hold(self, job_ids):
        raise AssertionError

    def release(self, job_ids):
        raise AssertionError

    def update_dependency(self, job_id, expression):
        raise AssertionError

    def find_jobs(self, name_prefix, since=None, include_accounting=True):
        return {}

    def read_cluster(self):
        raise AssertionError

    def job_comments(self, job_ids, since):
        raise AssertionError


def _dag(tmp_path, cascade="reconciler", n=1):
    store = Store(tmp_path / "home")
    fake = FakeSlurm({})
    fake.names = {}
    for k in range(n):
        plan = compile_text(WF)
        record, lock = store.create(plan)
        with lock:
            record.cascade = cascade
            record.submission = SUBMITTED
            for i, job in enumerate(plan.jobs):
                jid = str(1000 + 10 * k + i)
                record.job_ids[job.name] = jid
                fake.names[jid] = f"sd-{record.dag_id}-{job.name}"
            store.save(record)
        ids = record.job_ids
        fake.rows.update(
            {
                ids["a"]: ("FAILED", None),
                ids["b"]: ("PENDING", "DependencyNeverSatisfied"),
                ids["c"]: ("PENDING", "Dependency"),
            }
        )
    return store, fake


def test_one_query_per_pass_for_all_dags_and_the_cascade_cleared_at_once(tmp_path):
    store, fake = _dag(tmp_path, n=3)
    report = reconcile.reconcile_pass(store, fake)
    assert fake.queries == 1
    assert len(fake.cancelled) == 1 and len(fake.cancelled[0]) == 6  # b and c of each DAG, in one call
    assert len(report.statuses) == 3 and report.error is None
    again = reconcile.reconcile_pass(store, fake)
    assert all(s.terminal for s in again.statuses) and fake.queries == 2 and len(fake.cancelled) == 1
    assert reconcile.reconcile_pass(store, fake).statuses == []  # finished DAGs are no longer read
    assert fake.queries == 2


def test_a_slurm_error_is_reported_and_changes_nothing(tmp_path):
    store, fake = _dag(tmp_path)
    fake.down = True
    report = reconcile.reconcile_pass(store, fake)
    assert report.error and "will try again" in report.error
    assert report.statuses == [] and fake.cancelled == []
    assert all(r.final_state is None for r in store.list_records())


def test_lock_lets_one_reconciler_act_and_the_other_only_look(tmp_path):
    store, fake = _dag(tmp_path)
    held = store.lock_reconciler()
    assert held is not None and store.lock_reconciler() is None
    report = reconcile.step(store, fake)
    assert not report.acted and fake.cancelled == [] and report.statuses
    held.release()
    assert reconcile.step(store, fake).acted and fake.cancelled


def test_native_dags_are_only_backed_up(tmp_path):
    store, fake = _dag(tmp_path, cascade="native")
    reconcile.reconcile_pass(store, fake)
    assert [sorted(c) for c in fake.cancelled] == [["1001"]]  # b (stuck); c waits for Slurm's own cascade


def test_run_backs_off_while_nothing_changes_and_stops_when_terminal(tmp_path):
    store, fake = _dag(tmp_path)
    fake.rows["1000"] = ("RUNNING", None)
    fake.rows["1001"] = ("PENDING", "Dependency")
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 4:
            fake.rows["1000"] = ("FAILED", None)
            fake.rows["1001"] = ("PENDING", "DependencyNeverSatisfied")

    reconcile.run(store, fake, sleep=sleep, first_interval=1, max_interval=3)
    assert sleeps[:4] == [1, 1.5, 2.25, 3]  # nothing changed: back-off up to the ceiling
    assert sleeps[4] == 1  # the failure changed things: fast again
    assert fake.cancelled and all(r.final_state for r in store.list_records())


def test_reconciler_mode_submits_with_the_kill_off_and_records_it(tmp_path):
    from slurmdag.runs.submit import describe

    plan = compile_text(WF)
    assert all("--kill-on-invalid-dep=no" in p.options for p in describe(plan, "reconciler"))
    assert all("--kill-on-invalid-dep=yes" in p.options for p in describe(plan))
    store, _ = _dag(tmp_path)
    assert store.list_records()[0].cascade == "reconciler"


def test_dry_run_lists_what_it_would_cancel_and_changes_nothing(tmp_path):
    store, fake = _dag(tmp_path, n=2)
    before = {r.dag_id: r.to_json() for r in store.list_records()}
    report = reconcile.reconcile_pass(store, fake, dry_run=True)
    assert fake.cancelled == [] and not report.acted
    would = {d: sorted(c.allocation for c in cs) for d, cs in report.would_cancel.items()}
    assert would == {d: ["b", "c"] for d in before}
    assert {r.dag_id: r.to_json() for r in store.list_records()} == before  # not even the cached counts
    real = reconcile.reconcile_pass(store, fake)
    assert sorted(sum(fake.cancelled, [])) == sorted(c.job_id for cs in report.would_cancel.values() for c in cs)
    assert real.cancelled.keys() == report.would_cancel.keys()
