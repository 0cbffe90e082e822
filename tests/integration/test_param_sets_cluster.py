"""Explicit parameter sets on the real cluster: examples/param-sets.yaml picks 3 combinations out of a 4x4 grid;
Slurm runs exactly those 3 array tasks (sacct), each with its own values."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def test_three_hand_picked_combinations_run_as_three_tasks(slurm, run_slurmdag, shared_tmp):
    wf = shared_tmp / "param-sets.yaml"
    shutil.copy(REPO / "examples" / "param-sets.yaml", wf)
    out = shared_tmp / "out"
    out.mkdir()
    out.chmod(0o777)
    proc = run_slurmdag("submit", wf, "--set", f"out={out}", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = json.loads(proc.stdout)["jobs"]

    rows = slurm.wait_until_done([jobs["train"], jobs["grid"]], timeout=180)
    train = sorted(r["JobID"] for r in rows if r["JobID"].startswith(f"{jobs['train']}_"))
    assert train == [f"{jobs['train']}_{i}" for i in range(3)], rows  # exactly 3 tasks, no more
    assert all(r["State"] == "COMPLETED" for r in rows), rows
    assert all(r["NodeList"] != "None assigned" for r in rows), rows  # every task really ran
    grid = [r for r in rows if r["JobID"].startswith(f"{jobs['grid']}_")]
    assert len(grid) == 5, rows
    seen = {p.name: p.read_text().split() for p in out.iterdir()}
    assert {k: v for k, v in seen.items() if k.startswith("train-")} == {
        "train-0": ["0.1", "16"],
        "train-1": ["0.01", "64"],
        "train-2": ["0.0001", "128"],
    }
    assert sorted(tuple(v) for k, v in seen.items() if k.startswith("grid-")) == [
        ("0.0001", "128"),
        ("0.01", "16"),
        ("0.01", "64"),
        ("0.1", "16"),
        ("0.1", "64"),
    ]
