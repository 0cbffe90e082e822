"""`outputs:` and `{{ outputs.A.N }}`: validation (file:line:col, exit 2 from the CLI), the edges references add,
and the shell they become, run in bash against a run folder written here (hostile values must arrive literally).
The cluster test (tests/integration/test_outputs_cluster.py) runs them in Slurm."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from slurmdag.compiler import render
from slurmdag.compiler.compile import compile_text
from slurmdag.model import run_layout
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Edge

from .conftest import REPO, dedent, problem_lines


def _more(text: str) -> str:
    """More allocations, indented as items of BASE's `allocations:`."""
    return textwrap.indent(dedent(text), "  ")


def _problems(text: str) -> list[str]:
    with pytest.raises(InputError) as e:
        compile_text(text, "wf.yaml")
    return problem_lines(e.value)


BASE = """
    name: w
    allocations:
      - name: search
        entrypoint: slurmdag-output best_lr 0.01
        outputs: [best_lr]
      - name: grid
        tasks: 3
        outputs: [score, model]
        entrypoint: x
"""


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (
            "entrypoint: echo {{ outputs.serch.best_lr }}",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.serch.best_lr }}, but there is no allocation "
            "'serch'",
        ),
        (
            "entrypoint: echo {{ outputs.search.best_l }}",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.search.best_l }}, but 'search' declares no "
            "output 'best_l'",
        ),
        (
            "entrypoint: echo {{ outputs.search[0].best_lr }}",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.search[0].best_lr }}, but 'search' is not a "
            "task group",
        ),
        (
            "entrypoint: echo {{ outputs.grid[3].score }}",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.grid[3].score }}, but task group 'grid' has no "
            "task 3",
        ),
        (
            "entrypoint: echo {{ outputs.train.x }}\n    outputs: [x]",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.train.x }}: an allocation cannot use its own "
            "outputs",
        ),
        (
            "entrypoint: x\n    env: {LR: '{{ outputs.search }}'}",
            "wf.yaml:12:15: `env.LR` uses 'outputs.search', which is not an output",
        ),
        (
            "entrypoint: x\n    setup: ['{% set o = outputs %}{{ o.search.best_lr }}']",
            "wf.yaml:12:13: `setup` uses 'outputs', which is not an output",
        ),
        (
            "entrypoint: echo {{ outputs.search.best_lr | upper }}",
            "wf.yaml:11:17: `entrypoint`: an output's value is only known when the job starts: use "
            "{{ outputs.ALLOCATION.NAME }} as it is, not inside an expression or through a filter",
        ),
        (
            "entrypoint: echo '{{ outputs.search.best_lr }}'",
            "wf.yaml:11:17: `entrypoint` uses {{ outputs.search.best_lr }} inside single quotes, where the shell "
            "expands nothing",
        ),
        (
            "entrypoint: echo {{ outputs.search.best_lr }}\n    depends_on: [{search: failure}]",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.search.best_lr }}, but it depends on 'search' "
            "with `any`, so 'search' may not have completed when it starts".replace("`any`", "`failure`"),
        ),
        (
            "entrypoint: echo {{ outputs.search.best_lr }}\n    depends_on_any: [search, grid]",
            "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.search.best_lr }}, but 'search' is in its "
            "depends_on_any: it may not have run",
        ),
    ],
)
def test_bad_references_are_input_errors_at_their_place(child, expected):
    child = child.replace("\n    ", "\n")
    assert _problems(dedent(BASE) + "  - name: train\n    " + child.replace("\n", "\n    ") + "\n") == [expected]


def test_reference_to_a_downstream_allocation_is_refused():
    text = dedent(BASE) + _more(
        """
        - name: train
          entrypoint: echo {{ outputs.late.x }}
        - name: late
          entrypoint: slurmdag-output x 1
          outputs: [x]
          depends_on: [train]
        """
    )
    assert _problems(text) == [
        "wf.yaml:11:17: `entrypoint` of 'train' uses {{ outputs.late.x }}, but 'late' is not upstream of 'train': "
        "it runs after it"
    ]


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ("[1x]", "wf.yaml:4:15: invalid output name '1x'"),
        ("[a-b]", "wf.yaml:4:15: invalid output name 'a-b'"),
        ("[_x]", "wf.yaml:4:15: invalid output name '_x'"),
        ("[a, a]", "wf.yaml:4:18: output 'a' is declared twice"),
        ("[{a: 1}]", "wf.yaml:4:15: `outputs` must be a list of output names, not a mapping"),
    ],
)
def test_bad_output_declarations(outputs, expected):
    assert _problems(f"name: w\nallocations:\n  - name: a\n    outputs: {outputs}\n    entrypoint: x\n") == [expected]


def test_outputs_are_refused_in_defaults_and_for_scripts_that_are_not_shell(tmp_path):
    (tmp_path / "job.py").write_text("#!/usr/bin/env python3\nprint(1)\n")
    with pytest.raises(InputError) as e:
        compile_text(
            "name: w\ndefaults: {outputs: [a]}\nallocations:\n  - {name: p, script: job.py, outputs: [a]}\n",
            str(tmp_path / "wf.yaml"),
            base_dir=tmp_path,
        )
    lines = problem_lines(e.value)
    assert any("`outputs` cannot be used with script 'job.py'" in line for line in lines), lines
    assert any("outputs" in line and "defaults" in line for line in lines), lines


def test_a_reference_adds_a_success_edge_once():
    plan = compile_text(
        dedent(BASE)
        + "  - name: train\n    entrypoint: echo {{ outputs.search.best_lr }} {{ outputs.grid.score }}\n"
        + "    depends_on: [search]\n",
        "wf.yaml",
    )
    train = plan.job("train")
    assert set(train.edges) == {Edge("search", "success"), Edge("grid", "success")}
    assert {t.parent for t in train.dependency.terms} == {"search", "grid"}
    assert {t.kind for t in train.dependency.terms} == {"afterok"}


def test_no_reference_no_change():
    plan = compile_text(dedent(BASE), "wf.yaml")
    assert "_slurmdag_read" not in plan.job("search").script


# --- the shell: run in bash against a run folder of our own -----------------------------------------------------

HOSTILE = [
    "0.01",
    "two words  and  spaces",
    'it\'s "quoted"',
    "$(touch pwned)",
    "`touch pwned`",
    "${HOME} $HOME \\ \\n",
    "*",
    "-n",
    "tab\there; semi; && || | > <",
    "ünïcødé ✓",
    "multi\nline",
    "",
]

CONSUMER = dedent(BASE) + _more(
    """
    - name: train
      entrypoint: |
        python3 -c 'import json, os, sys; print(json.dumps({"argv": sys.argv[1:], "V": os.environ["V"],
          "W": os.environ["W"]}))' \\
          --lr={{ outputs.search.best_lr }} "in quotes: {{ outputs.search.best_lr }}" {{ outputs.grid[1].score }} \\
          "$(printf %s {{ outputs.grid[2].score }})" {{ outputs.grid.score }}
      env:
        V: "v={{ outputs.search.best_lr }}'\\"$"
        W: "{{ outputs.grid.model }}"
    """
)


def _run(script: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=run_dir.parent, timeout=20
    )


def _publish(run_dir: Path, allocation: str, name: str, value: str, task: int | None = None) -> None:
    path = run_layout.output_file(run_dir, allocation, name, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_values_arrive_literally_in_arguments_and_env(tmp_path, value):
    run_dir = tmp_path / "my run $(x)" / "run"
    plan = compile_text(CONSUMER, "wf.yaml")
    script = render.bind_script(plan.job("train"), render.Submission("0123abcd", run_dir=str(run_dir)))
    _publish(run_dir, "search", "best_lr", value)
    for task in range(3):
        _publish(run_dir, "grid", "score", f"{value}#{task}\n", task)
        _publish(run_dir, "grid", "model", f"m{task}", task)
    done = _run(script, run_dir)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    grid = [f"{value}#{t}" for t in range(3)]
    assert seen["argv"][:4] == [f"--lr={value}", f"in quotes: {value}", grid[1], grid[2]]
    assert json.loads(seen["argv"][4]) == grid
    assert seen["V"] == f"v={value}'\"$"
    assert json.loads(seen["W"]) == ["m0", "m1", "m2"]
    assert not list(tmp_path.rglob("pwned"))


def test_json_list_escapes_every_control_character(tmp_path):
    run_dir = tmp_path / "run"
    plan = compile_text(CONSUMER, "wf.yaml")
    script = render.bind_script(plan.job("train"), render.Submission("0123abcd", run_dir=str(run_dir)))
    _publish(run_dir, "search", "best_lr", "x")
    values = ["".join(chr(c) for c in range(1, 32)) + "end", '\\"', ""]
    for task in range(3):
        _publish(run_dir, "grid", "score", values[task], task)
        _publish(run_dir, "grid", "model", "m", task)
    done = _run(script, run_dir)
    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["argv"][-1]) == values


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (("search", "best_lr", None), "slurmdag: output best_lr of search is missing"),
        (("grid", "score", 1), "slurmdag: output score of grid task 1 is missing"),
        (("grid", "model", 2), "slurmdag: output model of grid task 2 is missing"),
    ],
)
def test_a_missing_value_fails_the_consumer_saying_which(tmp_path, missing, message):
    run_dir = tmp_path / "run"
    plan = compile_text(CONSUMER, "wf.yaml")
    script = render.bind_script(plan.job("train"), render.Submission("0123abcd", run_dir=str(run_dir)))
    _publish(run_dir, "search", "best_lr", "x")
    for task in range(3):
        _publish(run_dir, "grid", "score", "s", task)
        _publish(run_dir, "grid", "model", "m", task)
    run_layout.output_file(run_dir, missing[0], missing[1], missing[2]).unlink()
    done = _run(script, run_dir)
    assert done.returncode == 1
    assert message in done.stderr
    assert "argv" not in done.stdout  # the entrypoint did not run


PRODUCER = dedent(
    """
    name: w
    allocations:
      - name: p
        outputs: [best_lr, model]
        entrypoint: |
          for n in $WRITE; do slurmdag-output "$n" "v-$n"; done
          exit $RC
    """
)


@pytest.mark.parametrize(
    ("write", "rc", "expected_rc", "missing"),
    [
        ("best_lr model", 0, 0, []),
        ("best_lr", 0, 1, ["model"]),
        ("", 0, 1, ["best_lr", "model"]),
        ("", 3, 3, []),  # it failed anyway: its own status stays, nothing more is said
    ],
)
def test_a_producer_that_does_not_write_a_declared_output_fails(tmp_path, write, rc, expected_rc, missing):
    run_dir = tmp_path / "run"
    from slurmdag.runs import logs

    logs.prepare_run_dir(run_dir)
    stale = run_layout.output_file(run_dir, "p", "model")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("from an earlier run")  # cleared when the job starts
    script = render.bind_script(
        compile_text(PRODUCER, "wf.yaml").job("p"), render.Submission("0123abcd", run_dir=str(run_dir))
    )
    env = {"PATH": "/usr/bin:/bin", "WRITE": write, "RC": str(rc)}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert done.returncode == expected_rc, done.stderr
    for name in ("best_lr", "model"):
        said = f"slurmdag: missing output {name} " in done.stderr
        assert said == (name in missing), done.stderr
        if name in write.split():
            assert run_layout.output_file(run_dir, "p", name).read_text() == f"v-{name}"
        else:
            assert not run_layout.output_file(run_dir, "p", name).exists()


def test_every_example_of_the_passing_data_page_compiles():
    text = (REPO / "docs" / "passing-data.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "allocations:" in b]
    assert len(blocks) >= 3
    for block in blocks:
        compile_text(block, "passing-data.md")


# --- reading what was published (slurmdag outputs, status --json) -----------------------------------------------


def test_read_outputs_and_its_views(tmp_path):
    from slurmdag.runs.outputs import MAX_VALUE_BYTES, read_outputs
    from slurmdag.views.outputs_views import outputs_json, outputs_text

    plan = compile_text(dedent(BASE) + _more("- {name: train, entrypoint: 'echo {{ outputs.search.best_lr }}'}\n"), "w")
    run = tmp_path / "run"
    _publish(run, "search", "best_lr", "0.03\n")
    _publish(run, "search", ".best_lr.tmp.12", "partial")  # a write in progress is not an output
    _publish(run, "search", run_layout.RESULT_JSON, '{"x": [1, 2]}')
    _publish(run, "grid", "score", "a\nb", 0)
    _publish(run, "grid", "model", "x" * (MAX_VALUE_BYTES + 5), 0)
    _publish(run, "grid", "score", "s1", 1)
    found = read_outputs(run, plan)
    doc = outputs_json("0123abcd", str(run), found)
    assert doc["allocations"][0] == {
        "name": "search",
        "declared": ["best_lr"],
        "outputs": {"best_lr": "0.03"},
        "missing": [],
        "result": {"x": [1, 2]},
    }
    grid = doc["allocations"][1]
    assert [t["index"] for t in grid["tasks"]] == [0, 1]  # task 2 made no folder yet
    assert grid["tasks"][0]["truncated"] == ["model"] and len(grid["tasks"][0]["outputs"]["model"]) == MAX_VALUE_BYTES
    assert grid["tasks"][1] == {"index": 1, "outputs": {"score": "s1"}, "missing": ["model"]}
    assert doc["allocations"][2] == {"name": "train", "declared": [], "outputs": {}, "missing": []}
    text = outputs_text(found, every=False).splitlines()
    assert text[:2] == ["search   best_lr = 0.03", 'search   result = {"x": [1, 2]}']
    assert 'grid[0]  score = "a\\nb"' in text and "grid[1]  model: not published" in text
    assert not any(line.startswith("train") for line in text)
    assert outputs_text(read_outputs(run, plan, "train"), every=True) == "train  (nothing published yet)\n"


@pytest.mark.parametrize(("write", "expected_rc", "stopped"), [("best_lr model", 0, False), ("best_lr", 1, True)])
def test_a_missing_output_with_on_failure_stop_stops_the_dag(tmp_path, write, expected_rc, stopped):
    """Both use the EXIT trap: the outputs check runs first and hands its status to on_failure: stop's handler."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '77 PENDING sd-0123abcd-other'\n")
    (bin_dir / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/scancel.calls\n')
    for tool in ("squeue", "scancel"):
        (bin_dir / tool).chmod(0o755)
    from slurmdag.runs import logs

    logs.prepare_run_dir(tmp_path / "run")
    job = compile_text(PRODUCER.replace("  - name: p\n", "  - name: p\n    on_failure: stop\n"), "wf.yaml").job("p")
    script = render.bind_script(job, render.Submission("0123abcd", run_dir=str(tmp_path / "run")))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "WRITE": write, "RC": "0", "SLURM_JOB_NAME": "sd-0123abcd-p"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert done.returncode == expected_rc, done.stderr
    assert ("slurmdag: missing output model" in done.stderr) == stopped
    assert (tmp_path / "scancel.calls").exists() == stopped, done.stderr
    if stopped:
        assert (tmp_path / "scancel.calls").read_text() == "77\n"
        assert "cancelled the rest of its DAG (on_failure: stop)" in done.stderr


def test_references_inside_a_sub_workflow_read_its_own_copy(tmp_path):
    from slurmdag.compiler.compile import compile_file

    (tmp_path / "tune.yaml").write_text(
        dedent(
            """
            name: tune
            allocations:
              - name: search
                outputs: [best_lr]
                entrypoint: slurmdag-output best_lr 0.01
              - name: train
                entrypoint: echo --lr={{ outputs.search.best_lr }}
            """
        )
    )
    (tmp_path / "wf.yaml").write_text(
        dedent(
            """
            name: two
            allocations:
              - {name: a, uses: tune.yaml}
              - {name: b, uses: tune.yaml}
              - name: report
                entrypoint: echo {{ outputs["a.search"].best_lr }} {{ outputs["b.search"].best_lr }}
            """
        )
    )
    plan = compile_file(tmp_path / "wf.yaml")
    for copy in ("a", "b"):
        train = plan.job(f"{copy}.train")
        assert [(e.parent, e.condition) for e in train.edges] == [(f"{copy}.search", "success")]
        assert f'"$SLURMDAG_RUN_DIR/outputs/{copy}.search/best_lr"' in train.script
    assert sorted(e.parent for e in plan.job("report").edges) == ["a.search", "b.search"]


def test_every_member_of_a_group_job_is_bound_to_the_dag():
    """A group job's members run in the DAG's run folder: the group script's location line is bound (the members
    inherit it) and no member is left with the compiled, unbound one."""
    text = dedent(
        """
        name: grouped
        allocations:
          - {name: search, group: g, outputs: [best_lr], entrypoint: slurmdag-output best_lr 0.05}
          - {name: train, group: g, entrypoint: 'echo --lr={{ outputs.search.best_lr }}'}
        """
    )
    plan = compile_text(text, "wf.yaml")
    host = next(j for j in plan.jobs if j.kind == "host")
    script = render.bind_script(host, render.Submission("0123abcd", run_dir="/r/run"))
    assert script.count(run_layout.bound_location_line("0123abcd", "/r/run")) >= 1
    assert run_layout.location_line() not in script
