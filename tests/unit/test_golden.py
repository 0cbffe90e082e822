"""Golden files: rendered scripts and plan.json of the example workflows (tests/golden/README.md).

Regenerate after an intended change with `SLURMDAG_REGEN_GOLDEN=1 python -m pytest tests/unit/test_golden.py`
and review the diff.
"""

from __future__ import annotations

import os

import pytest

from slurmdag.compiler.compile import compile_file
from slurmdag.model import slurm_values as wt
from slurmdag.model.plan import Plan

from .conftest import REPO

GOLDEN = REPO / "tests" / "golden"
# golden folder -> workflow file under examples/
EXAMPLES = {
    "design-example": "design-example.yaml",
    "training-pipeline": "training-pipeline.yaml",
    "sweep": "sweep.yaml",
    "porting": "porting/workflow.yaml",  # `script:` allocations reusing batch scripts
    "auto-array": "auto-array.yaml",  # auto_array: siblings packed into one array job dispatching on the task id
}
REGEN = os.environ.get("SLURMDAG_REGEN_GOLDEN") == "1"


def rendered_files(plan: Plan) -> dict[str, str]:
    files = {f"{j.name}.sbatch": j.script for j in plan.jobs}
    files["plan.json"] = plan.to_json()
    return files


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_golden(example, monkeypatch):
    monkeypatch.chdir(REPO)  # the plan records the workflow path as given: keep it relative
    plan = compile_file(f"examples/{EXAMPLES[example]}")
    files = rendered_files(plan)
    folder = GOLDEN / example
    if REGEN:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())} if folder.is_dir() else {}
    assert sorted(on_disk) == sorted(files), "files differ; regenerate with SLURMDAG_REGEN_GOLDEN=1 if intended"
    for name, text in files.items():
        assert text == on_disk[name], f"{example}/{name} differs from the golden file"


@pytest.mark.parametrize("example", EXAMPLES)
def test_plan_json_round_trips(example, monkeypatch):
    monkeypatch.chdir(REPO)
    plan = compile_file(f"examples/{EXAMPLES[example]}")
    assert Plan.from_json(plan.to_json()) == plan


def test_compiling_twice_is_byte_identical(monkeypatch):
    monkeypatch.chdir(REPO)
    a = rendered_files(compile_file("examples/design-example.yaml"))
    b = rendered_files(compile_file("examples/design-example.yaml"))
    assert a == b


def test_every_example_compiles():
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        plan = compile_file(path)
        assert plan.allocations(), path


def test_a_format_1_plan_reads_as_today(monkeypatch):
    """DAGs stored before the walltime was typed keep working: their "time" option becomes `walltime`."""
    monkeypatch.chdir(REPO)
    plan = compile_file(f"examples/{EXAMPLES['porting']}")
    old = plan.to_dict()
    old["format"] = 1
    spellings = {"prepare": "0:10:00", "train": "20", "report": "5"}  # as format-1 plans kept a script's --time
    for job in old["jobs"]:
        seconds = job.pop("walltime")
        if seconds is not None:
            job["options"]["time"] = spellings.get(job["name"], wt.format_walltime(seconds))
    assert Plan.from_dict(old) == plan
    old["jobs"][0]["options"]["time"] = "1-30"  # a form only sbatch reads: kept as the option it was
    assert Plan.from_dict(old).jobs[0].options["time"] == "1-30"
