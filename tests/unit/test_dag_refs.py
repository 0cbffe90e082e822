"""`@`, `@~N` name your newest DAGs wherever a DAG id is accepted; `status` without an id is `status @`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from slurmdag.model.errors import UsageError
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.state.dag_refs import is_ref, resolve
from slurmdag.state.store import Store


def _dag(store: Store, created: str) -> str:
    plan = Plan(workflow="w", jobs=[PlannedJob(name="a", kind="allocation", options={}, script="#!/bin/sh\n")])
    record, lock = store.create(plan)
    lock.release()
    record.created = created
    store.save(record)
    return record.dag_id


def test_at_is_the_newest_and_tilde_counts_back(tmp_path):
    store = Store(tmp_path)
    old = _dag(store, "2024-01-01T00:00:00+00:00")
    new = _dag(store, "2024-03-01T00:00:00+00:00")
    mid = _dag(store, "2024-02-01T00:00:00+00:00")
    assert [resolve(store, r) for r in ("@", "@~0", "@~1", "@~2")] == [new, new, mid, old]
    assert resolve(store, old) == old  # an id is itself
    with pytest.raises(UsageError, match="only 3 DAG"):
        resolve(store, "@~3")


def test_no_dags_yet_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no DAGs yet"):
        resolve(Store(tmp_path), "@")


@pytest.mark.parametrize("text,ok", [("@", True), ("@~12", True), ("@~", False), ("@1", False), ("abc@", False)])
def test_ref_syntax(text, ok):
    assert is_ref(text) is ok


def _cli(home, *args):
    env = {"PATH": "/usr/bin:/bin", "SLURMDAG_HOME": str(home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_status_without_an_id_means_the_newest_dag(tmp_path):
    none = _cli(tmp_path, "status")
    assert none.returncode == 2 and "you have no DAGs yet" in none.stderr and "Traceback" not in none.stderr
    _dag(Store(tmp_path), "2024-01-01T00:00:00+00:00")
    past = _cli(tmp_path, "cancel", "@~1")
    assert past.returncode == 2 and "there are only 1 DAG(s)" in past.stderr, past.stderr
