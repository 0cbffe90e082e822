"""`stop_if:` — its expression language (parsed at compile time, located errors), the shell it becomes (run here by
sh/bash over real files, against fake squeue/scancel), and how status reports a DAG that stopped early."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from slurmdag.backends.base import JobInfo
from slurmdag.compiler import stop_if
from slurmdag.compiler.compile import compile_file, compile_text
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Plan
from slurmdag.model.states import DagState
from slurmdag.runs.status import build_status
from slurmdag.state.store import DagRecord

from .conftest import EXAMPLES, problem_lines

WF = """\
name: t
allocations:
  - {name: eval, entrypoint: "slurmdag-output loss $LOSS", stop_if: "outputs.eval.loss > 5"}
  - {name: next, entrypoint: "true", depends_on: [eval]}
"""


@pytest.mark.parametrize(
    ("condition", "files", "holds"),
    [
        ("outputs.e.loss > 5", {"loss": "9\n"}, True),
        ("outputs.e.loss > 5", {"loss": "5"}, False),
        ("outputs.e.loss >= 5", {"loss": "5.0"}, True),
        ("5 < outputs.e.loss", {"loss": "1e3"}, True),
        ("outputs.e.loss > 5", {}, False),  # a missing output never makes a comparison true
        ("outputs.e.loss > 5", {"loss": "NaN-ish"}, False),  # nor a value that is not a number
        ("outputs.e.loss < 0.5 or outputs.e.status == 'done'", {"status": "done"}, True),
        ("outputs.e.loss < 0.5 and outputs.e.status == 'done'", {"status": "done", "loss": "0.7"}, False),
        ('not (outputs.e.status != "it\'s $(x)")', {"status": "it's $(x)"}, True),
        ("outputs.e.flag == true", {"flag": "true"}, True),
    ],
)
def test_conditions_evaluate_in_the_shell_over_the_files(tmp_path, condition, files, holds):
    for name, value in files.items():
        (tmp_path / name).write_text(value)
    code = "\n".join(stop_if.shell(stop_if.parse(condition)))
    done = subprocess.run(["sh", "-c", code], env={**os.environ, "SLURMDAG_OUTPUTS": str(tmp_path)}, timeout=30)
    assert (done.returncode == 0) is holds


P = "invalid `stop_if` (at character "
BAD = {
    "no-literal": ("outputs.eval.loss >", P + "20): expected a number or a quoted string, found the end"),
    "no-output": ("loss > 5", P + "1): a comparison needs an output (`outputs.<allocation>.<name>`) on one side"),
    "string-order": ("outputs.eval.s < 'x'", P + "16): strings are compared with == or != only, not <"),
    "trailing": ("outputs.eval.loss > 5 5", P + "23): unexpected '5': expected `and`, `or` or the end"),
    "python": ("__import__('os').system('x')", P + "11): expected a comparison (== != < <= > >=), found '('"),
    "other-allocation": (
        "outputs.train.loss > 5",
        "`stop_if` of 'eval' reads the outputs of 'train': a condition reads the allocation's own outputs only",
    ),
}


@pytest.mark.parametrize(("condition", "message"), BAD.values(), ids=BAD.keys())
def test_bad_conditions_are_located(condition, message):
    text = f'name: t\nallocations:\n  - name: eval\n    entrypoint: x\n    stop_if: "{condition}"\n'
    with pytest.raises(InputError) as err:
        compile_text(text, "wf.yaml")
    assert problem_lines(err.value) == [f"wf.yaml:5:14: {message}"]


def test_not_in_defaults_and_not_for_a_non_shell_script(write):
    write("#!/usr/bin/env python3\nprint(1)\n", "job.py")
    path = write(
        "name: t\ndefaults: {stop_if: 'outputs.a.x > 1'}\nallocations:\n"
        "  - {name: a, script: job.py, stop_if: 'outputs.a.x > 1'}\n"
    )
    with pytest.raises(InputError) as err:
        compile_file(path)
    lines = [line.split("/")[-1] for line in problem_lines(err.value)]
    assert lines[0] == "wf.yaml:2:12: `stop_if` cannot be set in defaults"
    assert lines[1].startswith("wf.yaml:4:40: `stop_if` cannot be used with script 'job.py'")


def test_the_plan_keeps_the_condition_and_the_example_compiles():
    plan = compile_text(WF)
    assert Plan.from_json(plan.to_json()).job("eval").stop_if == "outputs.eval.loss > 5"
    assert "stop_if" not in plan.to_dict()["jobs"][1]
    assert "_slurmdag_stop_if" in plan.job("eval").script and "_slurmdag_end" not in plan.job("next").script
    assert compile_file(EXAMPLES / "early-stop.yaml").job("eval").stop_if == "outputs.eval.loss > 5"


def _run_job(tmp_path, loss: str | None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scancel.log"
    (bin_dir / "squeue").write_text(
        "#!/bin/sh\necho '10 RUNNING sd-abcd1234-eval'\necho '11 PENDING sd-abcd1234-next'\n"
    )
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'JobId=10 JobState=RUNNING Reason=None'\n")
    (bin_dir / "slurmdag-output").write_text(
        '#!/bin/sh\nmkdir -p "$SLURMDAG_OUTPUTS"; printf %s "$2" > "$SLURMDAG_OUTPUTS/$1"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    script = (
        compile_text(WF if loss is not None else WF.replace("slurmdag-output loss $LOSS", "true")).job("eval").script
    )
    script = script.replace("export SLURMDAG_DAG_ID=''", "export SLURMDAG_DAG_ID=abcd1234").replace(
        '"${SLURM_SUBMIT_DIR:-$PWD}/slurmdag-run"', f'"{tmp_path}/run"'
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_NAME": "sd-abcd1234-eval",
        "SLURM_JOB_ID": "10",
        "LOSS": loss or "",
    }
    (tmp_path / "run").mkdir()
    done = subprocess.run(["bash", "-c", script.split("\n", 1)[1]], env=env, capture_output=True, text=True, timeout=30)
    marker = tmp_path / "run" / "stopped-early"
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, calls, marker.read_text().strip() if marker.exists() else None


def test_when_it_holds_the_job_marks_the_dag_and_cancels_the_rest_but_still_succeeds(tmp_path):
    assert _run_job(tmp_path, "9") == (0, ["11"], "eval")


@pytest.mark.parametrize("loss", ["1", None])
def test_when_it_does_not_hold_nothing_is_cancelled(tmp_path, loss):
    assert _run_job(tmp_path, loss) == (0, [], None)


def _status(stopped_early):
    plan = compile_text(WF)
    infos = {
        "eval": JobInfo("eval", "eval", None, "sd-00000000-eval", "COMPLETED", node_list="n1"),
        "next": JobInfo("next", "next", None, "sd-00000000-next", "CANCELLED"),
    }
    record = DagRecord(
        dag_id="00000000",
        name="t",
        created="2026-01-01T00:00:00+00:00",
        submission="submitted",
        job_ids={"eval": "eval", "next": "next"},
    )
    return build_status(record, plan, infos, stopped_early=stopped_early)


def test_status_says_completed_and_stopped_early():
    status = _status("eval")
    assert status.state is DagState.COMPLETED and status.stopped_early == "eval"
    assert {n.name: n.cancelled_by for n in status.nodes}["next"] == "stop"
    assert any("stopped early by eval" in n for n in status.notes)


def test_without_the_mark_a_cancelled_dag_is_cancelled():
    status = _status(None)
    assert status.state is DagState.CANCELLED and status.stopped_early is None


def test_a_condition_is_bounded():
    with pytest.raises(stop_if.StopIfSyntaxError, match="more than 1,000"):
        stop_if.parse("outputs.e.x > 1 or " * 60 + "outputs.e.x > 1")
    with pytest.raises(stop_if.StopIfSyntaxError, match="more than 50 comparisons"):
        stop_if.parse(" or ".join(["outputs.e.x>1"] * 51))
