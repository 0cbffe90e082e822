"""`stop_if` on the real cluster (Slurm's view): examples/early-stop.yaml's `eval` publishes `loss`; with loss=9 its
own job cancels every later allocation and the DAG is Completed, marked stopped early; with loss=1 it runs to the
end."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

NAMES = ["prep", "eval", "side", "train", "report"]


def _run(slurm, run_slurmdag, shared_tmp, loss: int):
    wf = shared_tmp / "early-stop.yaml"
    shutil.copy(REPO / "examples" / "early-stop.yaml", wf)
    proc = run_slurmdag("submit", wf, "--set", f"loss={loss}", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    rows = {r["JobIDRaw"]: r for r in slurm.wait_until_done([doc["jobs"][n] for n in NAMES], timeout=240)}
    by = {n: rows[doc["jobs"][n]] for n in NAMES}
    status = run_slurmdag("status", doc["dag_id"], "--json")
    assert status.returncode == 0, status.stderr
    return doc["dag_id"], by, json.loads(status.stdout)


def test_a_metric_over_the_threshold_stops_the_dag_early(slurm, run_slurmdag, shared_tmp):
    dag_id, by, st = _run(slurm, run_slurmdag, shared_tmp, 9)
    assert by["prep"]["State"] == "COMPLETED" and by["eval"]["State"] == "COMPLETED", by
    for name in ("train", "report"):  # every later allocation: cancelled, never ran
        assert by[name]["State"].startswith("CANCELLED"), by[name]
        assert by[name]["NodeList"] == "None assigned", by[name]
    assert by["side"]["State"].startswith("CANCELLED"), by["side"]  # was running (or waiting): cancelled too
    assert st["state"] == "Completed" and st["stopped_early"] == "eval", st
    states = {a["name"]: a["state"] for a in st["allocations"]}
    assert states == {
        "prep": "Completed",
        "eval": "Completed",
        "side": "Cancelled",
        "train": "Cancelled",
        "report": "Cancelled",
    }, states
    table = run_slurmdag("status", dag_id).stdout
    assert "Completed (stopped early by eval)" in table, table


def test_a_metric_under_the_threshold_runs_to_the_end(slurm, run_slurmdag, shared_tmp):
    _, by, st = _run(slurm, run_slurmdag, shared_tmp, 1)
    assert all(by[n]["State"] == "COMPLETED" for n in NAMES), by
    assert st["state"] == "Completed" and "stopped_early" not in st, st
