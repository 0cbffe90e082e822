"""Python functions as steps on the real cluster (issue 15, docs/python-api.md): results handed from job to job
with no driver, a map as one array job, a raised exception as DagFailedError with its children cancelled, and a
function defined in a submitting script's `__main__`. Job outcomes are read from Slurm (sacct), results from the
files the jobs wrote."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurmdag import DagFailedError, Workflow
from slurmdag.state.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WAIT = 300  # seconds: generous, the machine is shared


def square(x):
    return x * x


def add(a, b):
    return a + b


def scaled(i):
    return {"index": i, "value": i * 10}


def collect(values):
    return values


def fail(x):
    raise ValueError(f"cannot handle {x}")


@pytest.fixture
def submit_dir(tmp_path, monkeypatch):
    """Jobs run in the folder the DAG was submitted from: a private one, never the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def job_ids(dag_id):
    return Store().load(dag_id).job_ids


def test_square_then_add_hands_the_result_on(slurm, slurmdag_home, slurm_backend, submit_dir, run_slurmdag):
    wf = Workflow("py-chain", defaults={"walltime": "5m"})
    sq = wf.call("square", square, 3)
    wf.call("add", add, sq, 1)
    handle = wf.submit(backend=slurm_backend)
    handle.wait(timeout=WAIT)
    assert handle.result("add") == 10
    assert handle.results() == {"square": 9, "add": 10}
    ids = job_ids(handle.id)
    rows = {r["JobID"]: r for r in slurm.wait_until_done([ids["square"], ids["add"]], timeout=WAIT)}
    assert rows[ids["square"]]["State"] == "COMPLETED" and rows[ids["add"]]["State"] == "COMPLETED"
    assert rows[ids["add"]]["Start"] >= rows[ids["square"]]["End"]  # afterok: add started after square ended
    # an ordinary DAG for the command line
    status = run_slurmdag("status", handle.id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "Completed"
    shown = run_slurmdag("outputs", handle.id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["square  result = 9", "add     result = 10"]
    doc = run_slurmdag("outputs", handle.id, "add", "--json")
    assert doc.returncode == 0, doc.stderr
    assert [(a["name"], a["result"]) for a in json.loads(doc.stdout)["allocations"]] == [("add", 10)]


def test_map_of_20_is_one_array_job_and_reduce_gets_every_result_in_order(
    slurm, slurmdag_home, slurm_backend, submit_dir
):
    wf = Workflow("py-map", defaults={"walltime": "5m"})
    scores = wf.map("score", scaled, range(20))
    wf.call("reduce", collect, scores)
    handle = wf.submit(backend=slurm_backend)
    handle.wait(timeout=WAIT)
    expected = [{"index": i, "value": i * 10} for i in range(20)]
    assert handle.result("reduce") == expected
    assert handle.result("score") == expected
    ids = job_ids(handle.id)
    rows = slurm.wait_until_done([ids["score"]], timeout=WAIT)
    assert sorted(r["JobID"] for r in rows) == sorted(f"{ids['score']}_{i}" for i in range(20))
    assert {r["JobID"].split("_")[0] for r in rows} == {ids["score"]}  # one job id, 20 tasks
    assert {r["State"] for r in rows} == {"COMPLETED"}


def test_a_raising_function_is_dag_failed_error_and_its_children_are_cancelled(
    slurm, slurmdag_home, slurm_backend, submit_dir, run_slurmdag
):
    wf = Workflow("py-fail", defaults={"walltime": "5m"})
    first = wf.call("first", square, 2)
    bad = wf.call("bad", fail, first)
    child = wf.call("child", square, bad)
    wf.call("grandchild", square, child)
    wf.call("sibling", square, first)
    handle = wf.submit(backend=slurm_backend)
    with pytest.raises(DagFailedError) as err:
        handle.wait(timeout=WAIT)
    e = err.value
    assert e.failed_allocations == {"bad"}
    (failure,) = e.failed
    assert (failure.exception_type, failure.message) == ("ValueError", "cannot handle 4")
    assert "in fail" in failure.traceback and isinstance(failure.exception, ValueError)
    assert e.cancelled == {"child", "grandchild"}
    assert e.completed == {"first", "sibling"}
    assert "bad raised ValueError: cannot handle 4" in str(e)
    ids = job_ids(handle.id)
    rows = {r["JobID"]: r["State"] for r in slurm.wait_until_done(list(ids.values()), timeout=WAIT)}
    assert rows[ids["bad"]] == "FAILED"
    assert rows[ids["child"]].startswith("CANCELLED") and rows[ids["grandchild"]].startswith("CANCELLED")
    assert rows[ids["sibling"]] == "COMPLETED"
    shown = run_slurmdag("outputs", handle.id, "bad")
    assert shown.stdout == "bad  raised ValueError: cannot handle 4\n", shown.stderr


def _docs_example(name: str) -> str:
    """The Python block of docs/python-api.md that follows `<!-- example: NAME -->`."""
    text = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- example: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"docs/python-api.md has no example {name!r}"
    return found.group(1)


DOCS_EXAMPLES = {
    "square-add": ["10"],
    "map-reduce": ["190 [0, 10, 20]"],
    "failure": ["{'invert'}", "ZeroDivisionError division by zero", "{'load'} {'report'}"],
}


@pytest.mark.parametrize("example", sorted(DOCS_EXAMPLES))
def test_docs_examples_run_as_scripts_with_functions_of_main(example, slurm, slurmdag_home, submit_dir):
    """Each example of docs/python-api.md, run as a script: its functions live in the script's `__main__` and
    travel by value. Its DAG's jobs are checked in Slurm's accounting."""
    script = submit_dir / "pipeline.py"
    script.write_text(_docs_example(example), encoding="utf-8")
    env = {
        **slurm.env(),
        "SLURMDAG_HOME": str(slurmdag_home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=submit_dir, capture_output=True, text=True, timeout=WAIT + 60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for expected in DOCS_EXAMPLES[example]:
        assert expected in lines, proc.stdout
    (dag_id,) = [p.name for p in (slurmdag_home / "dags").iterdir()]
    ids = job_ids(dag_id)
    rows = slurm.wait_until_done(list(ids.values()), timeout=WAIT)
    by_id = {i: name for name, i in ids.items()}
    states: dict[str, set[str]] = {}
    for r in rows:  # an array task's JobID is <array id>_<index>
        states.setdefault(by_id[r["JobID"].split("_")[0]], set()).add(r["State"].split()[0])
    if example == "failure":
        assert states == {"load": {"COMPLETED"}, "invert": {"FAILED"}, "report": {"CANCELLED"}}
    else:
        assert set().union(*states.values()) == {"COMPLETED"}


def where_am_i(x):
    import sys

    return {"x": x, "python": sys.executable, "slurmdag imported": "slurmdag" in sys.modules}


def test_a_step_runs_with_another_interpreter_that_lacks_slurmdag(
    slurm, slurmdag_home, slurm_backend, submit_dir, shared_tmp
):
    """`python=`: the job entry runs by path under that interpreter, which needs cloudpickle but not slurmdag (the job
    does not import slurmdag). This module's functions go by value (the venv could not import this test module)."""
    import cloudpickle

    venv = shared_tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    libs = shared_tmp / "libs"  # cloudpickle alone, on the venv's path through a .pth file
    shutil.copytree(Path(cloudpickle.__file__).parent, libs / "cloudpickle")
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "libs.pth").write_text(f"{libs}\n")
    python = venv / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import cloudpickle, slurmdag"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert "No module named 'slurmdag'" in probe.stderr  # the venv really lacks it

    wf = Workflow("py-venv", defaults={"walltime": "5m"})
    here = wf.call("here", where_am_i, 1)
    wf.call("there", where_am_i, here, resources={"python": str(python), "env": {"PYTHONPATH": ""}})
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        handle = wf.submit(backend=slurm_backend)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    handle.wait(timeout=WAIT)
    here_value = {"x": 1, "python": sys.executable, "slurmdag imported": False}
    assert handle.result("here") == here_value
    assert handle.result("there") == {"x": here_value, "python": str(python), "slurmdag imported": False}
    ids = job_ids(handle.id)
    rows = slurm.wait_until_done(list(ids.values()), timeout=WAIT)
    assert {r["State"] for r in rows} == {"COMPLETED"}


def flaky(x, marker):
    """Fails the first time (leaving `marker`), works when run again."""
    if not os.path.exists(marker):
        Path(marker).write_text("failed once")
        raise RuntimeError("first attempt fails")
    return x + 1


def test_resume_reruns_the_failed_step_against_the_results_its_parents_left(
    slurm, slurmdag_home, slurm_backend, submit_dir, shared_tmp, run_slurmdag
):
    marker = shared_tmp / "flaky-marker"
    wf = Workflow("py-resume", defaults={"walltime": "5m"})
    first = wf.call("first", square, 4)
    second = wf.call("second", flaky, first, str(marker))
    wf.call("third", add, second, 100)
    handle = wf.submit(backend=slurm_backend)
    with pytest.raises(DagFailedError) as err:
        handle.wait(timeout=WAIT)
    assert err.value.failed_allocations == {"second"} and err.value.cancelled == {"third"}
    first_id = job_ids(handle.id)["first"]
    resumed = run_slurmdag("resume", handle.id)
    assert resumed.returncode == 0, resumed.stderr
    handle.wait(timeout=WAIT)
    assert handle.results() == {"first": 16, "second": 17, "third": 117}
    ids = job_ids(handle.id)
    assert ids["first"] == first_id  # kept, not run again
    rows = slurm.wait_until_done([ids["second"], ids["third"]], timeout=WAIT)
    assert {r["State"] for r in rows} == {"COMPLETED"}


def test_cancel_from_the_handle_cancels_every_unfinished_job(slurm, slurmdag_home, slurm_backend, submit_dir):
    wf = Workflow("py-cancel", defaults={"walltime": "5m"})
    slow = wf.call("slow", time.sleep, 240)
    wf.call("after", square, slow)
    handle = wf.submit(backend=slurm_backend)
    ids = job_ids(handle.id)
    slurm.wait_for(
        lambda: any(r["State"] == "RUNNING" for r in slurm.squeue([ids["slow"]])), timeout=WAIT, what="slow to run"
    )
    handle.cancel()
    rows = {r["JobID"]: r["State"] for r in slurm.wait_until_done([ids["slow"], ids["after"]], timeout=WAIT)}
    assert rows[ids["slow"]].startswith("CANCELLED") and rows[ids["after"]].startswith("CANCELLED"), rows
    with pytest.raises(DagFailedError) as err:
        handle.wait(timeout=WAIT)
    assert err.value.state == "Cancelled" and err.value.cancelled == {"slow", "after"}
