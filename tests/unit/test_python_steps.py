"""Python functions as steps, without Slurm: the builder (call/map/grid), serialisation, the job entry
(runs/pystep.py, run in-process and as the job runs it: by path, in a child interpreter), reading results back,
and the DAG handle's error shape. The cluster tests are tests/integration/test_python_steps_cluster.py."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import slurmdag
from slurmdag import DagFailedError, InputError, ResultNotFoundError, Workflow
from slurmdag.compiler import pysteps
from slurmdag.model.states import AllocationState, DagState
from slurmdag.runs import dag_handle, pyresults, pystep
from slurmdag.runs.python_submit import serialise, write_step


def square(x):
    return x * x


def add(a, b):
    return a + b


def boom(x):
    raise ValueError(f"bad input {x}")


# --- the builder ---


def test_call_and_map_are_allocations_with_success_edges():
    wf = Workflow("t")
    sq = wf.call("square", square, 3)
    total = wf.call("add", add, a=sq, b=1, resources={"walltime": "5m", "mem": "1G"})
    scores = wf.map("score", square, range(20))
    reduce_ = wf.call("reduce", sum, scores)
    plan = wf.compile()
    jobs = {j.name: j for j in plan.jobs}
    assert jobs["square"].dependency is None
    assert [(t.kind, t.parent) for t in jobs["add"].dependency.terms] == [("afterok", "square")]
    assert [(t.kind, t.parent) for t in jobs["reduce"].dependency.terms] == [("afterok", "score")]
    assert jobs["score"].array is not None and jobs["add"].walltime == 300
    assert (sq.tasks, total.tasks, scores.tasks, reduce_.tasks) == (None, None, 20, None)
    entry = wf.to_dict()["allocations"][0]["entrypoint"]
    assert entry == f"{sys.executable} {pysteps.JOB_ENTRY} square"


def test_handles_nested_in_lists_tuples_and_dicts_are_found_and_replaced():
    wf = Workflow("t")
    a = wf.call("a", square, 2)
    b = wf.map("b", square, [1, 2])
    Pair = collections.namedtuple("Pair", "x y")
    given = {"k": [a, (b, 3)], "p": Pair(a, 1)}
    wf.call("c", lambda **kw: kw, **given)
    step = wf.python_steps()["c"]
    assert step.parents == {"a": None, "b": 2}
    assert sorted(step.call.refs, key=str) == sorted(
        [(("kwargs", "k", 0), "a"), (("kwargs", "k", 1, 0), "b"), (("kwargs", "p", 0), "a")], key=str
    )
    assert given["k"][0] is a  # the user's containers are not changed
    data = step.call.as_data()
    bound = {"args": data["args"], "kwargs": data["kwargs"]}
    for path, parent in data["refs"]:
        bound = pystep.put(bound, path, {"a": 4, "b": [1, 4]}[parent])
    assert bound["kwargs"] == {"k": [4, ([1, 4], 3)], "p": Pair(4, 1)}
    assert [d for d in wf.to_dict()["allocations"][2]["depends_on"]] == ["a", "b"]


def test_grid_is_every_combination_last_key_fastest():
    wf = Workflow("t")
    g = wf.map("g", add, grid={"a": [1, 2], "b": [10, 20, 30]})
    assert g.tasks == 6
    kwargs = [t.kwargs for t in wf.python_steps()["g"].tasks]
    assert kwargs[:3] == [{"a": 1, "b": 10}, {"a": 1, "b": 20}, {"a": 1, "b": 30}]


def test_function_keywords_may_be_called_name_or_func():
    wf = Workflow("t")
    wf.call("s", lambda name, func: name + func, name="x", func="y")
    assert wf.python_steps()["s"].call.kwargs == {"name": "x", "func": "y"}


def test_python_interpreter_per_workflow_and_per_step():
    wf = Workflow("t", python="/opt/venv/bin/python")
    wf.call("a", square, 1)
    wf.call("b", square, 1, resources={"python": "/other/bin/python3"})
    allocs = wf.to_dict()["allocations"]
    assert allocs[0]["entrypoint"].startswith("/opt/venv/bin/python ")
    assert allocs[1]["entrypoint"].startswith("/other/bin/python3 ")
    assert "python" not in allocs[1]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda wf: wf.call("a", 42), "needs a function to call, not int 42"),
        (lambda wf: wf.map("a", square), "give either the items or grid=..., not neither"),
        (lambda wf: wf.map("a", square, [1], grid={"x": [1]}), "not both"),
        (lambda wf: wf.map("a", square, []), "has no items"),
        (lambda wf: wf.map("a", square, wf.call("b", square, 1)), "the items must be known at submit"),
        (lambda wf: wf.map("a", add, grid={"a": 3}), "grid['a'] must be a list of values"),
        (lambda wf: wf.call("a", square, 1, resources={"tasks": 3}), "sets tasks itself"),
        (lambda wf: wf.call("a", square, 1, resources=[1]), "`resources` must be a mapping"),
        (lambda wf: wf.call("a", square, 1, resources={"python": 3}), "`python` must be the path"),
    ],
)
def test_wrong_calls_are_input_errors(build, message):
    with pytest.raises(InputError) as err:
        build(Workflow("t"))
    assert message in str(err.value)
    assert re.search(r"<python>:allocations\[\d\]", str(err.value))


def test_a_shell_allocation_or_another_workflows_handle_is_no_argument():
    wf, other = Workflow("t"), Workflow("u")
    shell = wf.allocation("prep", "true")
    with pytest.raises(InputError, match="is a shell allocation"):
        wf.call("a", square, shell)
    with pytest.raises(InputError, match="belongs to another Workflow"):
        wf.call("a", square, other.call("x", square, 1))
    wf.call("b", square, 2, resources={"depends_on": [shell]})  # a plain edge to a shell allocation
    assert wf.to_dict()["allocations"][1]["depends_on"] == ["prep"]


def test_values_are_checked_as_yaml_keys_are():
    wf = Workflow("t")
    wf.call("a", square, 1, resources={"walltime": "soon"})
    with pytest.raises(InputError, match=r"<python>:allocations\[0\]\.walltime: invalid walltime"):
        wf.compile()


def test_unpicklable_argument_is_an_input_error_before_submitting():
    wf = Workflow("t")
    wf.call("a", square, threading.Lock())
    with pytest.raises(InputError, match="Python step 'a': its function or arguments cannot be serialised"):
        serialise(wf.python_steps())


def test_public_names():
    assert slurmdag.DagFailedError is DagFailedError
    assert issubclass(DagFailedError, slurmdag.SlurmdagError)
    assert hasattr(slurmdag.Workflow, "submit") and issubclass(slurmdag.Workflow, slurmdag.compiler.api.Workflow)


# --- the job entry and reading results back ---


# The folder this module is imported from (pytest may import it as `unit.test_python_steps` or `tests.unit...`):
# its functions are pickled by name, so the job entry must find them there, as a submitting script's folder is.
IMPORT_ROOT = Path(__file__).resolve().parents[len(__name__.split(".")) - 1]


def _prepare(tmp_path, wf):
    run_dir = tmp_path / "run"
    steps = wf.python_steps()
    calls = serialise(steps)
    for name, step in steps.items():
        write_step(str(run_dir), step, calls[name], [str(IMPORT_ROOT)])
    return run_dir


def test_job_entry_calls_stores_and_hands_results_on(tmp_path):
    wf = Workflow("t")
    sq = wf.call("square", square, 3)
    wf.call("add", add, sq, b=1)
    scores = wf.map("score", square, range(5))
    wf.call("reduce", lambda xs, extra: [*xs, extra], scores, extra={"n": sq})
    run_dir = _prepare(tmp_path, wf)
    pystep.run("square", str(run_dir), None)
    pystep.run("add", str(run_dir), 7)  # an index inherited from the environment means nothing to a call
    for i in range(5):
        pystep.run("score", str(run_dir), i)
    pystep.run("reduce", str(run_dir), None)
    assert pyresults.result(run_dir, "add") == 10
    assert pyresults.result(run_dir, "score") == [0, 1, 4, 9, 16]
    assert pyresults.result(run_dir, "reduce") == [0, 1, 4, 9, 16, {"n": 9}]
    assert json.loads((run_dir / "outputs" / "add" / ".result.json").read_text()) == 10
    assert (run_dir / "outputs" / "score" / "3" / ".result.pickle").is_file()
    assert pyresults.python_steps(run_dir) == ["add", "reduce", "score", "square"]
    shown = pyresults.shown_results(run_dir, "score")
    assert [(s.task, s.json, s.repr) for s in shown][:2] == [(0, 0, "0"), (1, 1, "1")]


def test_non_json_result_has_a_pickle_and_a_repr_but_no_json_copy(tmp_path):
    wf = Workflow("t")
    wf.call("s", lambda: {1, 2})
    run_dir = _prepare(tmp_path, wf)
    pystep.run("s", str(run_dir), None)
    assert pyresults.result(run_dir, "s") == {1, 2}
    assert not (run_dir / "outputs" / "s" / ".result.json").exists()
    (shown,) = pyresults.shown_results(run_dir, "s")
    assert (shown.has_json, shown.repr) == (False, "{1, 2}")
    assert b"cloudpickle" not in (run_dir / "outputs" / "s" / ".result.pickle").read_bytes()  # data: plain pickle


def test_a_result_plain_pickle_cannot_store_goes_through_cloudpickle(tmp_path):
    wf = Workflow("t")
    wf.call("f", lambda k: lambda x: x * k, 3)
    run_dir = _prepare(tmp_path, wf)
    pystep.run("f", str(run_dir), None)
    assert b"cloudpickle" in (run_dir / "outputs" / "f" / ".result.pickle").read_bytes()
    assert pyresults.result(run_dir, "f")(2) == 6


def test_exception_is_stored_with_its_traceback_and_reraised(tmp_path):
    wf = Workflow("t")
    wf.map("b", boom, [1, 2])
    run_dir = _prepare(tmp_path, wf)
    with pytest.raises(ValueError, match="bad input 2"):
        pystep.run("b", str(run_dir), 1)
    folder = run_dir / "outputs" / "b" / "1"
    raised = pystep.read_exception(folder)
    assert raised["type"] == "ValueError" and raised["message"] == "bad input 2"
    assert "in boom" in raised["traceback"] and 'raise ValueError(f"bad input {x}")' in raised["traceback"]
    (failure,) = pyresults.failures(run_dir, "b", "Failed")
    assert (failure.allocation, failure.task, failure.exception_type) == ("b", 1, "ValueError")
    assert isinstance(failure.exception, ValueError)
    with pytest.raises(ResultNotFoundError, match=r"b\[0\] has no result: it has not finished"):
        pyresults.result(run_dir, "b")
    with pytest.raises(ResultNotFoundError, match="not a Python step"):
        pyresults.result(run_dir, "nope")


def test_job_entry_runs_by_path_in_a_child_interpreter(tmp_path):
    """As in the job: `python .../pystep.py NAME` with SLURMDAG_RUN_DIR set; exit 1 and a traceback on stderr when
    the function raises; our own modules are not on the function's sys.path."""
    wf = Workflow("t")
    wf.call("ok", lambda: sorted(m for m in ("status", "submit") if __import__("importlib").util.find_spec(m)))
    wf.call("bad", boom, 7)
    run_dir = _prepare(tmp_path, wf)
    env = {**os.environ, "SLURMDAG_RUN_DIR": str(run_dir)}
    ok = subprocess.run([sys.executable, str(pysteps.JOB_ENTRY), "ok"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert pyresults.result(run_dir, "ok") == []
    bad = subprocess.run([sys.executable, str(pysteps.JOB_ENTRY), "bad"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "ValueError: bad input 7" in bad.stderr
    assert pystep.read_exception(run_dir / "outputs" / "bad")["message"] == "bad input 7"


# --- the DAG handle ---


def _status(state, allocs):
    nodes = [SimpleNamespace(name=name, state=s, tasks=None, kind="allocation") for name, s in allocs]
    return SimpleNamespace(
        state=state, terminal=state not in (DagState.PENDING, DagState.RUNNING), allocations=lambda: nodes
    )


def test_wait_raises_dag_failed_error_with_the_remote_exception(tmp_path, monkeypatch):
    wf = Workflow("t")
    wf.call("ok", square, 2)
    wf.call("bad", boom, 3)
    run_dir = _prepare(tmp_path, wf)
    pystep.run("ok", str(run_dir), None)
    with pytest.raises(ValueError):
        pystep.run("bad", str(run_dir), None)
    handle = dag_handle.DagHandle("0123abcd", store=SimpleNamespace(), backend=SimpleNamespace())
    monkeypatch.setattr(handle, "_run_dir", lambda: str(run_dir))
    passes = iter(
        [
            _status(DagState.RUNNING, [("ok", AllocationState.RUNNING)]),
            _status(
                DagState.FAILED,
                [
                    ("ok", AllocationState.COMPLETED),
                    ("bad", AllocationState.FAILED),
                    ("child", AllocationState.CANCELLED),
                ],
            ),
        ]
    )
    monkeypatch.setattr(handle, "status", lambda: next(passes))
    slept = []
    with pytest.raises(DagFailedError) as err:
        handle.wait(sleep=slept.append)
    e = err.value
    assert (e.completed, e.cancelled, e.failed_allocations) == ({"ok"}, {"child"}, {"bad"})
    assert (e.failed[0].exception_type, e.failed[0].message) == ("ValueError", "bad input 3")
    assert "bad raised ValueError: bad input 3" in str(e) and "remote traceback of bad" in str(e)
    assert slept == [dag_handle.WAIT_POLL_START]
    assert handle.results() == {"ok": 4}


def test_wait_times_out(monkeypatch):
    handle = dag_handle.DagHandle("0123abcd", store=SimpleNamespace(), backend=SimpleNamespace())
    monkeypatch.setattr(handle, "status", lambda: _status(DagState.RUNNING, []))
    now = [0.0]

    def sleep(s):
        now[0] += s

    with pytest.raises(TimeoutError, match="still Running after 3 s"):
        handle.wait(timeout=3, sleep=sleep, clock=lambda: now[0])
    assert now[0] == pytest.approx(3)


def test_the_job_entry_uses_the_layouts_file_names():
    """runs/pystep.py is self-contained (run by path, importing nothing of slurmdag): its names are the layout's."""
    from slurmdag.model import run_layout

    assert (pystep.RESULT_JSON, pystep.RESULT_PICKLE) == (run_layout.RESULT_JSON, run_layout.RESULT_PICKLE)
    assert (pystep.EXCEPTION_JSON, pystep.EXCEPTION_PICKLE) == (run_layout.EXCEPTION_JSON, run_layout.EXCEPTION_PICKLE)
    assert pystep.PYTHON_DIR_NAME == run_layout.PYTHON_DIR_NAME
    assert pystep.ENV_RUN_DIR == run_layout.ENV_RUN_DIR and pystep.ENV_TASK_INDEX == run_layout.ENV_TASK_INDEX


def test_slurmdag_outputs_shows_python_results_and_exceptions(tmp_path):
    """The view of `slurmdag outputs` (runs/outputs.py): a step's JSON result, a repr when it has no JSON copy, and
    the exception a task raised."""
    from slurmdag.runs.outputs import read_outputs
    from slurmdag.views.outputs_views import outputs_json, outputs_text

    wf = Workflow("t")
    sq = wf.call("square", square, 3)
    wf.call("s", lambda: {1, 2})
    wf.map("b", boom, [1, 2])
    wf.call("add", add, sq, b=1)
    run_dir = _prepare(tmp_path, wf)
    pystep.run("square", str(run_dir), None)
    pystep.run("s", str(run_dir), None)
    with pytest.raises(ValueError):
        pystep.run("b", str(run_dir), 1)
    found = read_outputs(run_dir, wf.compile())
    doc = {a["name"]: a for a in outputs_json("0123abcd", str(run_dir), found)["allocations"]}
    assert (doc["square"]["result"], doc["square"]["repr"]) == (9, "9")
    assert "result" not in doc["s"] and doc["s"]["repr"] == "{1, 2}"
    assert [(t["index"], t.get("error")) for t in doc["b"]["tasks"]] == [(0, None), (1, "ValueError: bad input 2")]
    text = outputs_text(found, every=False)
    assert "square  result = 9\n" in text and "s       result = {1, 2}\n" in text
    assert "b[1]    raised ValueError: bad input 2\n" in text
    assert "add     (nothing published yet)\n" in text


def test_a_result_that_cannot_be_loaded_or_is_too_big_is_said_not_raised(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / pystep.RESULT_PICKLE).write_bytes(b"cno_such_module_here\nThing\n.")  # a class it cannot import
    assert pyresults.result_repr(folder).startswith("<cannot be loaded here: ModuleNotFoundError")
    monkeypatch.setattr(pyresults, "MAX_SHOWN_PICKLE_BYTES", 3)
    assert "too big to show" in pyresults.result_repr(folder)
    assert pyresults.result_repr(tmp_path) is None  # no result at all


def test_a_handle_takes_the_command_lines_dag_references(tmp_path):
    from slurmdag.state.store import Store

    store = Store(tmp_path / "home")
    with pytest.raises(slurmdag.InputError, match="you have no DAGs yet"):
        dag_handle.DagHandle("@", store=store, backend=SimpleNamespace())
    wf = Workflow("t")
    wf.call("a", square, 1)
    record, lock = store.create(wf.compile(), workflow=None, scripts=lambda dag_id: {}, durable=False)
    lock.release()
    assert dag_handle.DagHandle("@", store=store, backend=SimpleNamespace()).id == record.dag_id
    assert dag_handle.DagHandle(record.dag_id, store=store, backend=SimpleNamespace()).id == record.dag_id
