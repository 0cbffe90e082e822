"""A Slurm command that prints something slurmdag cannot read (another program first on PATH, an unknown Slurm
version) is a clean message naming the command and exit 1 at the CLI, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmdag.compiler.compile import compile_text
from slurmdag.state.store import SUBMITTED, Store

WORKFLOW = """
name: garbage
allocations:
  - name: a
    entrypoint: "true"
  - name: b
    entrypoint: "true"
    depends_on: [a]
"""


@pytest.fixture
def fake_slurm(tmp_path: Path) -> Path:
    """A bin folder whose squeue, sacct, scontrol and scancel print garbage and exit 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("squeue", "sacct", "scontrol", "scancel", "sbatch"):
        path = bin_dir / name
        path.write_text("#!/bin/sh\necho 'this is not slurm output'\necho 'neither|is|this'\n")
        path.chmod(0o755)
    return bin_dir


@pytest.fixture
def stored_dag(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    store = Store(home)
    record, lock = store.create(compile_text(WORKFLOW, "wf.yaml"))
    with lock:
        record.submission = SUBMITTED
        record.gate_job_id = "100"
        record.job_ids = {"a": "101", "b": "102"}
        store.save(record)
    return home, record.dag_id


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["cancel"], ["list"]])
def test_unreadable_slurm_output_is_a_clean_error_exit_1(command, fake_slurm, stored_dag, tmp_path):
    home, dag_id = stored_dag
    args = command + ([dag_id] if command[0] != "list" else [])
    env = {
        "PATH": f"{fake_slurm}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "SLURMDAG_HOME": str(home),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "slurmdag", *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    # Names the command and quotes what it printed.
    assert "printed output slurmdag cannot read" in proc.stderr
    assert any(f"`{c}`" in proc.stderr for c in ("squeue", "sacct")), proc.stderr
    assert "this is not slurm output" in proc.stderr or "neither|is|this" in proc.stderr
