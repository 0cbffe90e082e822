"""Every job knows where it is: SLURMDAG_DAG_ID / _RUN_DIR / _OUTPUTS in the rendered scripts, the run folder's
layout (model/run_layout.py) and the `slurmdag-output` helper the jobs find on their PATH. The scripts run in bash
here (not in Slurm: the cluster tests do that)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from slurmdag.compiler import render
from slurmdag.compiler.compile import compile_text
from slurmdag.model import run_layout
from slurmdag.runs import logs
from slurmdag.state.store import DagRecord, Store
from tests.unit.conftest import dedent

PRINT_ENV = (
    "python3 -c 'import json, os; "
    'print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("SLURMDAG_") or k == "PATH"}))\''
)

WF = dedent(
    f"""
    name: w
    allocations:
      - {{name: one, entrypoint: {json.dumps(PRINT_ENV)}}}
      - {{name: grid, entrypoint: {json.dumps(PRINT_ENV)}, tasks: 3}}
    """
)

HOSTILE_DIRS = ["plain", "two words", 'it\'s "q"', "$(touch pwned)", "`touch pwned`", "${HOME} \\n", "new\nline"]


def _run(script: str, cwd: Path, **env: str) -> dict[str, str]:
    base = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", **env}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=base, cwd=cwd, timeout=20)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", HOSTILE_DIRS)
def test_a_bound_script_knows_its_dag_run_dir_and_outputs(tmp_path, name):
    plan = compile_text(WF, "wf.yaml")
    run_dir = str(tmp_path / name / "run")
    submission = render.Submission("0123abcd", log_dir=str(tmp_path / "logs"), run_dir=run_dir)
    one = render.bind_script(plan.job("one"), submission)
    seen = _run(one, tmp_path)
    assert seen["SLURMDAG_DAG_ID"] == "0123abcd"
    assert seen["SLURMDAG_ALLOCATION"] == "one"
    assert seen["SLURMDAG_RUN_DIR"] == run_dir
    assert seen["SLURMDAG_OUTPUTS"] == str(run_layout.outputs_dir(run_dir, "one"))
    assert seen["PATH"].split(":")[0] == str(run_layout.helper_path(run_dir).parent)
    grid = render.bind_script(plan.job("grid"), submission)
    seen = _run(grid, tmp_path, SLURM_ARRAY_TASK_ID="2")
    assert seen["SLURMDAG_OUTPUTS"] == str(run_layout.outputs_dir(run_dir, "grid", 2))
    assert not list(tmp_path.rglob("pwned"))


def test_a_compiled_script_submitted_by_hand_uses_slurmdag_run_in_its_submit_dir(tmp_path):
    script = compile_text(WF, "wf.yaml").job("one").script
    assert run_layout.location_line() in script
    seen = _run(script, tmp_path, SLURM_SUBMIT_DIR=str(tmp_path))
    assert seen["SLURMDAG_DAG_ID"] == ""
    assert seen["SLURMDAG_RUN_DIR"] == f"{tmp_path}/slurmdag-run"
    assert seen["SLURMDAG_OUTPUTS"] == f"{tmp_path}/slurmdag-run/outputs/one"
    assert not (tmp_path / "slurmdag-run").exists()  # nothing is made by a job that publishes nothing


def test_only_the_first_location_line_is_bound(tmp_path):
    # a user's entrypoint writing the same text is the user's; slurmdag's own line comes first
    text = WF.replace(json.dumps(PRINT_ENV), json.dumps("export SLURMDAG_DAG_ID=mine; " + PRINT_ENV), 1)
    plan = compile_text(text, "wf.yaml")
    script = render.bind_script(plan.job("one"), render.Submission("0123abcd", run_dir="/r"))
    assert script.count("export SLURMDAG_DAG_ID=0123abcd SLURMDAG_RUN_DIR=/r") == 1
    assert "export SLURMDAG_DAG_ID=mine; " in script


def test_run_dir_follows_the_log_folder_choice(tmp_path, monkeypatch):
    store = Store(tmp_path / "home")
    monkeypatch.delenv(logs.LOG_DIR_ENV, raising=False)
    assert logs.run_dir_for(store, "0123abcd") == tmp_path / "home" / "dags" / "0123abcd" / "run"
    assert logs.run_dir_for(store, "0123abcd", tmp_path / "scratch") == tmp_path / "scratch" / "0123abcd" / "run"
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "env"))
    assert logs.run_dir_for(store, "0123abcd") == tmp_path / "env" / "0123abcd" / "run"


def test_record_keeps_its_run_dir():
    record = DagRecord(dag_id="0123abcd", name="w", created="2026-01-01T00:00:00+00:00", run_dir="/r/run")
    assert DagRecord.from_json(record.to_json()).run_dir == "/r/run"
    old = json.loads(record.to_json())
    del old["run_dir"]  # a record written before run folders existed
    assert DagRecord.from_json(json.dumps(old)).run_dir is None


def test_layout_paths():
    assert run_layout.outputs_dir("/r", "search") == Path("/r/outputs/search")
    assert run_layout.outputs_dir("/r", "grid", 3) == Path("/r/outputs/grid/3")
    assert run_layout.output_file("/r", "grid", "best_lr", 0) == Path("/r/outputs/grid/0/best_lr")
    assert run_layout.helper_path("/r") == Path("/r/bin/slurmdag-output")


VALUES = ["0.01", "two words", 'it\'s "q"', "$(touch pwned)", "`touch pwned`", "a\nb", "-n", "%s%d", ""]


@pytest.mark.parametrize("value", VALUES)
def test_helper_publishes_the_value_byte_for_byte(tmp_path, value):
    run_dir = tmp_path / "run"
    logs.prepare_run_dir(run_dir)
    outputs = tmp_path / "run" / "outputs" / "a"
    env = {"PATH": f"{run_dir / 'bin'}:/usr/bin:/bin", "SLURMDAG_OUTPUTS": str(outputs)}
    done = subprocess.run(
        ["sh", "-c", 'slurmdag-output best_lr "$1"', "sh", value], env=env, cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert (outputs / "best_lr").read_text() == value
    assert not list(tmp_path.rglob("pwned"))
    assert [p.name for p in outputs.iterdir()] == ["best_lr"]  # no temporary file left


def test_helper_reads_standard_input_and_refuses_bad_use(tmp_path):
    run_dir = tmp_path / "run"
    logs.prepare_run_dir(run_dir)
    helper = str(run_layout.helper_path(run_dir))
    env = {"PATH": "/usr/bin:/bin", "SLURMDAG_OUTPUTS": str(tmp_path / "o")}
    done = subprocess.run([helper, "model"], input=b"a\0b", env=env, capture_output=True)
    assert done.returncode == 0 and (tmp_path / "o" / "model").read_bytes() == b"a\0b"
    for argv in ([helper], [helper, "../x", "1"], [helper, "1x", "1"], [helper, "a", "b", "c"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert done.returncode == 2 and "slurmdag-output" in done.stderr, argv
    done = subprocess.run([helper, "a", "1"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 2 and "SLURMDAG_OUTPUTS is not set" in done.stderr


@pytest.mark.parametrize("value", VALUES)
def test_console_script_writes_what_the_sh_helper_writes(tmp_path, value, monkeypatch):
    from slurmdag.cli import output_helper

    monkeypatch.setenv("SLURMDAG_OUTPUTS", str(tmp_path / "o"))
    assert output_helper.main(["best_lr", value]) == 0
    assert (tmp_path / "o" / "best_lr").read_text() == value
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["best_lr"]
    assert output_helper.main(["../x", "1"]) == 2
    monkeypatch.delenv("SLURMDAG_OUTPUTS")
    assert output_helper.main(["a", "1"]) == 2
