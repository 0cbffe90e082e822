"""Shell completion (Typer's): the scripts are generated, and completing offers commands, DAG ids and allocation
names, driven the way the generated bash/zsh scripts drive it (environment variables, then the program)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.state.store import Store


def _run(home, *args, **env):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLURMDAG_HOME": str(home), "HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args], capture_output=True, text=True, timeout=60, env={**base, **env}
    )


@pytest.fixture
def dag(tmp_path):
    plan = Plan(
        workflow="pipe",
        jobs=[PlannedJob(name=n, kind="allocation", options={}, script="#!/bin/sh\n") for n in ("prep", "train")],
    )
    record, lock = Store(tmp_path).create(plan)
    lock.release()
    return record.dag_id


def _bash(home, line: str) -> list[str]:
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    done = _run(home, COMP_WORDS=line, COMP_CWORD=str(cword), _SLURMDAG_COMPLETE="complete_bash")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_generated(tmp_path, shell):
    # Typer detects the calling shell from the process tree unless told not to (then it takes the shell's name)
    done = _run(tmp_path, "--show-completion", shell, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert done.returncode == 0, done.stderr
    assert "_SLURMDAG_COMPLETE" in done.stdout
    assert f"complete_{shell}" in done.stdout


def test_completes_commands(tmp_path):
    assert _bash(tmp_path, "slurmdag sta") == ["status"]
    assert {"submit", "status", "logs", "show", "forget", "cancel"} <= set(_bash(tmp_path, "slurmdag "))


def test_completes_dag_ids(tmp_path, dag):
    assert _bash(tmp_path, "slurmdag status ") == [dag]
    assert _bash(tmp_path, f"slurmdag cancel {dag[:3]}") == [dag]
    assert _bash(tmp_path, "slurmdag status ffffffff"[: len("slurmdag status ") + 1] + "x") == []


def test_completes_allocation_names_of_the_dag_given(tmp_path, dag):
    assert _bash(tmp_path, f"slurmdag redo {dag} ") == ["prep", "train"]
    assert _bash(tmp_path, "slurmdag redo @ tr") == ["train"]  # `@` is resolved first


def test_zsh_completion_describes_each_dag(tmp_path, dag):
    done = _run(tmp_path, _SLURMDAG_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="slurmdag status ")
    assert done.returncode == 0, done.stderr
    assert dag in done.stdout and "pipe" in done.stdout
