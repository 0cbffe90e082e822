"""Run by tests/packaging/test_install.py with the Python of a fresh virtual environment that has the slurmdag
wheel installed (outside the repository): the installed `slurmdag` command and package must work with whatever
dependency versions that environment holds. Needs no Slurm. Exits non-zero, saying what failed.

    python smoke.py EXAMPLE_DIR WORK_DIR
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*args: str, expect: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "slurmdag"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=WORK,
        env={**os.environ, "SLURMDAG_HOME": str(WORK / "home"), **(env or {})},
    )
    if done.returncode != expect or "Traceback" in done.stderr:
        sys.exit(
            f"`slurmdag {' '.join(args)}` exited {done.returncode} (expected {expect}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def main() -> None:
    import slurmdag

    assert str(Path(slurmdag.__file__).resolve()).startswith(sys.prefix), (
        f"not the installed package: {slurmdag.__file__}"
    )
    example = EXAMPLES / "design-example.yaml"

    top = run("--help").stdout
    for command in ("submit", "status", "logs", "validate", "compile", "schema"):
        assert command in top, f"--help does not list {command}"
    assert "Usage" in run("status", "--help").stdout
    assert run("validate", str(example)).stdout == f"{example}: valid (8 allocations)\n"
    doc = json.loads(run("validate", str(example), "--json").stdout)
    assert doc["valid"] and doc["allocations"] == 8
    bad = WORK / "bad.yaml"
    bad.write_text("name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 1:00:00, gpu: 1}\n")
    assert "bad.yaml:3:" in run("validate", str(bad), expect=2).stderr
    run("compile", str(example), "-o", str(WORK / "out"))
    assert (WORK / "out" / "plan.json").is_file() and list((WORK / "out").glob("*.sbatch"))
    schema = json.loads(run("schema").stdout)
    assert schema["title"] == "slurmdag workflow"
    shipped = Path(slurmdag.__file__).parent / "workflow.schema.json"
    assert json.loads(shipped.read_text()) == schema, "the wheel's workflow.schema.json differs from `slurmdag schema`"
    run("graph", str(example))
    assert "you have no DAGs yet" in run("status", expect=2).stderr  # a DAG argument callback, through typer
    assert run("list").stdout.strip() == "no DAGs yet"
    comp = run(env={"COMP_WORDS": "slurmdag sta", "COMP_CWORD": "1", "_SLURMDAG_COMPLETE": "complete_bash"})
    assert comp.stdout.split() == ["status"], comp.stdout

    # the slurmdag-output console script publishes a value, as the job-side helper does (docs/passing-data.md)
    outputs = WORK / "outputs"
    done = subprocess.run(
        [str(BIN / "slurmdag-output"), "best_lr", "0.01 $(x)"],
        env={**os.environ, "SLURMDAG_OUTPUTS": str(outputs)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (outputs / "best_lr").read_text() == "0.01 $(x)"

    # the live view renders with this rich
    from rich.console import Console

    from slurmdag.model.plan import Plan, PlannedJob
    from slurmdag.model.states import AllocationState, DagState
    from slurmdag.runs.status import AllocationStatus, DagStatus
    from slurmdag.views.live_view import live_renderable

    plan = Plan(workflow="w", jobs=[PlannedJob(name="a", kind="allocation", options={}, script="")])
    status = DagStatus(
        "0123abcd",
        "w",
        DagState.RUNNING,
        "submitted",
        "",
        [AllocationStatus("a", "allocation", "1", AllocationState.RUNNING, None, None, None)],
        plan,
    )
    console = Console(file=io.StringIO(), width=100, force_terminal=True, record=True)
    console.print(live_renderable(status, "12:00:00", height=20))
    assert "1 Running" in console.export_text()

    # a Python step with this cloudpickle: a lambda serialised by value, run by the installed job entry (by path)
    from slurmdag import Workflow
    from slurmdag.compiler.pysteps import JOB_ENTRY
    from slurmdag.runs import pyresults
    from slurmdag.runs.python_submit import serialise, write_step

    wf = Workflow("py")
    first = wf.call("first", lambda x: x * x, 3)
    wf.call("second", lambda a, b: a + b, first, b=1)
    run_dir = WORK / "run"
    steps = wf.python_steps()
    for name, blob in serialise(steps).items():
        write_step(str(run_dir), steps[name], blob, [])
    for name in ("first", "second"):
        subprocess.run(
            [sys.executable, str(JOB_ENTRY), name], env={**os.environ, "SLURMDAG_RUN_DIR": str(run_dir)}, check=True
        )
    assert pyresults.result(run_dir, "second") == 10
    print("smoke OK:", " ".join(f"{m}=={v}" for m, v in versions().items()))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("typer", "click", "rich", "pyyaml", "jinja2", "tabulate", "markupsafe", "cloudpickle"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


if __name__ == "__main__":
    EXAMPLES, WORK = Path(sys.argv[1]), Path(sys.argv[2])
    main()
