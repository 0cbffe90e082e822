"""The local store: layout, permissions, atomic writes, locks, unique ids under concurrent creation."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from slurmdag.model.errors import StoreError, UnknownDagError, UsageError
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.state.store import SUBMITTED, Store, atomic_write, check_dag_id


def _plan(n: int = 2) -> Plan:
    return Plan(
        workflow="w",
        jobs=[
            PlannedJob(name=f"j{i}", kind="allocation", options={}, script=f"#!/bin/sh\necho {i}\n", walltime=60)
            for i in range(n)
        ],
    )


def test_create_writes_layout_with_private_permissions(tmp_path):
    home = tmp_path / "home"
    store = Store(home)
    record, lock = store.create(_plan(), workflow="/x/w.yaml", gate_script="#!/bin/sh\nexit 0\n")
    lock.release()
    folder = home / "dags" / record.dag_id
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["dag.json", "lock", "plan.json", "scripts"]
    assert (folder / "scripts" / "j1.sbatch").read_text() == "#!/bin/sh\necho 1\n"
    assert (folder / "scripts" / "+gate.sbatch").is_file()
    data = json.loads((folder / "dag.json").read_text())
    assert data["dag_id"] == record.dag_id and data["submission"] == "submitting"
    assert data["workflow"] == "/x/w.yaml" and data["pid"] == os.getpid()
    assert store.load_plan(record.dag_id).jobs[1].script == "#!/bin/sh\necho 1\n"
    check_dag_id(record.dag_id)


def test_the_store_names_the_gate_script_and_replaces_a_plan_with_its_scripts(tmp_path):
    store = Store(tmp_path)
    record, lock = store.create(_plan(2), gate_script="#!/bin/sh\nexit 0\n")
    with lock:
        assert store.gate_script_path(record.dag_id).read_text() == "#!/bin/sh\nexit 0\n"
        new = _plan(3)
        new.jobs[0].script = "#!/bin/sh\necho changed\n"
        store.replace_plan(record.dag_id, new)
    assert [j.name for j in store.load_plan(record.dag_id).jobs] == ["j0", "j1", "j2"]
    assert store.script_path(record.dag_id, "j0").read_text() == "#!/bin/sh\necho changed\n"
    assert store.script_path(record.dag_id, "j2").read_text() == "#!/bin/sh\necho 2\n"


def test_one_reconciler_lock_per_store_released_with_its_holder(tmp_path):
    store = Store(tmp_path / "home")
    held = store.lock_reconciler()
    assert held is not None and Store(tmp_path / "home").lock_reconciler() is None
    held.release()
    again = store.lock_reconciler()
    assert again is not None
    again.release()


def test_save_and_load_round_trip_and_list_is_newest_first(tmp_path):
    store = Store(tmp_path)
    first, lock = store.create(_plan())
    lock.release()
    first.created = "2020-01-01T00:00:00+00:00"
    first.job_ids = {"j0": "11", "j1": "12_[0-3]"}
    first.submission = SUBMITTED
    store.save(first)
    second, lock = store.create(_plan())
    lock.release()
    loaded = store.load(first.dag_id)
    assert loaded.job_ids == {"j0": "11", "j1": "12_[0-3]"} and loaded.submission == SUBMITTED
    assert [r.dag_id for r in store.list_records()] == [second.dag_id, first.dag_id]


def test_unknown_and_malformed_ids_are_usage_errors(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(UnknownDagError) as ex:
        store.load("0123abcd")
    assert ex.value.exit_code == 2 and "slurmdag list" in str(ex.value)
    with pytest.raises(UsageError):
        store.load("../../etc")


def test_corrupt_record_is_a_store_error(tmp_path):
    store = Store(tmp_path)
    record, lock = store.create(_plan())
    lock.release()
    (tmp_path / "dags" / record.dag_id / "dag.json").write_text("{not json")
    with pytest.raises(StoreError):
        store.load(record.dag_id)


def test_atomic_write_leaves_no_temp_file_and_replaces(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_dag_lock_is_exclusive_across_processes_and_freed_when_holder_dies(tmp_path):
    store = Store(tmp_path)
    record, lock = store.create(_plan())
    holder = textwrap.dedent(f"""
        import sys, time
        from slurmdag.state.store import Store
        lock = Store({str(tmp_path)!r}).lock_dag({record.dag_id!r}, blocking=False)
        print("got" if lock else "busy", flush=True)
        if lock and len(sys.argv) > 1:
            time.sleep(60)
    """)
    out = subprocess.run([sys.executable, "-c", holder], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "busy"  # we hold it
    lock.release()
    proc = subprocess.Popen([sys.executable, "-c", holder, "hold"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "got"
    assert store.lock_dag(record.dag_id, blocking=False) is None
    proc.kill()  # SIGKILL: the kernel drops the flock
    proc.wait()
    again = store.lock_dag(record.dag_id, blocking=False)
    assert again is not None
    again.release()


def test_update_skips_when_busy_and_applies_when_free(tmp_path):
    store = Store(tmp_path)
    record, lock = store.create(_plan())
    assert store.update(record.dag_id, lambda r: setattr(r, "final_state", "Completed")) is None
    lock.release()
    updated = store.update(record.dag_id, lambda r: setattr(r, "final_state", "Completed"))
    assert updated is not None and store.load(record.dag_id).final_state == "Completed"


def _create_many(home: str, n: int, out: multiprocessing.Queue) -> None:
    store = Store(home)
    ids = []
    for _ in range(n):
        record, lock = store.create(_plan(1))
        record.job_ids = {"j0": str(len(ids))}
        store.save(record)
        lock.release()
        ids.append(record.dag_id)
    out.put(ids)


def test_concurrent_creators_get_distinct_ids_and_readers_never_see_half_files(tmp_path):
    out: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_create_many, args=(str(tmp_path), 25, out)) for _ in range(4)]
    for p in procs:
        p.start()
    store = Store(tmp_path)
    seen_reads = 0
    while any(p.is_alive() for p in procs):
        seen_reads += len(store.list_records())  # must never raise on a half-written dag.json
    ids = [i for _ in procs for i in out.get(timeout=60)]
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(ids) == 100 and len(set(ids)) == 100
    assert {r.dag_id for r in store.list_records()} == set(ids)
