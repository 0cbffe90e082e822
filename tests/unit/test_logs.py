"""Log files: where slurmdag sends each job's output, and finding them again without asking Slurm."""

from __future__ import annotations

import pytest

from slurmdag.compiler import render
from slurmdag.compiler.compile import compile_text
from slurmdag.model.plan import PlannedJob
from slurmdag.runs import logs
from slurmdag.state.store import DagRecord, Store
from tests.unit.conftest import dedent

WF = dedent(
    """
    name: w
    allocations:
      - {name: prep, entrypoint: x}
      - {name: shards, entrypoint: x, tasks: 4, depends_on: [prep]}
      - {name: mine, entrypoint: x, output: "out/%x-%j.txt", error: "err-%A_%a.txt"}
      - {name: moved, entrypoint: x, workdir: /scratch/me, output: "r%5j.log"}
      - {name: join, entrypoint: x, depends_on: [mine], depends_on_any: [prep, moved]}
    """
)


@pytest.fixture
def plan():
    return compile_text(WF, "wf.yaml")


def _record(**kw) -> DagRecord:
    base = dict(dag_id="0123abcd", name="w", created="2026-01-01T00:00:00+00:00", submit_dir="/home/me/proj")
    return DagRecord(**{**base, **kw})


def _output(job, log_dir: str | None = "/L") -> dict[str, str | None]:
    options = dict(render.sbatch_options(job, render.Submission("0123abcd", log_dir=log_dir)))
    return {k: options[k] for k in ("output", "error") if k in options}


def test_default_output_goes_to_the_dags_log_folder(plan):
    assert _output(plan.job("prep")) == {"output": "/L/prep_%j.out"}
    assert _output(plan.job("shards")) == {"output": "/L/shards_%A_%a.out"}
    assert _output(plan.job("prep"), None) == {}  # a DAG recorded before log folders: Slurm's default


def test_output_key_wins_and_join_jobs_write_nothing(plan):
    assert _output(plan.job("mine")) == {"output": "out/%x-%j.txt", "error": "err-%A_%a.txt"}
    join = next(j for j in plan.jobs if j.kind == "join")
    assert _output(join) == {"output": "/dev/null", "error": "/dev/null"}
    # written at compile time already, so a compiled join script submitted by hand leaves no slurm-%j.out either
    assert "#SBATCH --error=/dev/null\n" in join.script and "#SBATCH --output=/dev/null\n" in join.script


def test_default_log_dir_is_in_the_store_unless_told(tmp_path, monkeypatch):
    store = Store(tmp_path)
    monkeypatch.delenv(logs.LOG_DIR_ENV, raising=False)
    assert logs.log_dir_for(store, "0123abcd") == tmp_path / "dags" / "0123abcd" / "logs"
    monkeypatch.setenv(logs.LOG_DIR_ENV, str(tmp_path / "scratch"))
    assert logs.log_dir_for(store, "0123abcd") == tmp_path / "scratch" / "0123abcd"
    assert logs.log_dir_for(store, "0123abcd", "/elsewhere") == logs.Path("/elsewhere/0123abcd")


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("%x_%j.out", "sd-0123abcd-a_42.out"),
        ("%A_%a.out", "40_7.out"),
        ("%5A-%3a", "00040-007"),
        ("100%%-%b", "100%-7"),
        ("%N.log", "*.log"),
        ("lit\\%j", "lit%j"),
        ("%u", "alice"),
    ],
)
def test_expand_substitutes_like_slurm(pattern, expected):
    ref = logs.JobRef("40", "40", 7, "sd-0123abcd-a", array=True)
    if "%j" in pattern and "\\" not in pattern:
        ref = logs.JobRef("42", "42", None, "sd-0123abcd-a")
    assert logs.expand(pattern, ref, user="alice") == expected


def test_a_single_job_has_no_array_task():
    assert logs.expand("%A_%a", logs.JobRef("9", "9", None, "n")) == "9_4294967294"


def test_paths_follow_the_record_and_the_plan(plan):
    record = _record(log_dir="/L", job_ids={"prep": "10", "shards": "11", "mine": "12", "moved": "13"})
    prep = logs.allocation_logs(plan, record, "prep")
    assert (prep.stdout, prep.shared) == ("/L/prep_10.out", True)
    assert logs.allocation_logs(plan, record, "shards", 3).stdout == "/L/shards_11_3.out"
    assert logs.allocation_logs(plan, record, "shards").stdout == "/L/shards_11_*.out"
    mine = logs.allocation_logs(plan, record, "mine")  # relative to where submit ran
    assert (mine.stdout, mine.stderr) == (
        "/home/me/proj/out/sd-0123abcd-mine-12.txt",
        "/home/me/proj/err-12_4294967294.txt",
    )
    assert logs.allocation_logs(plan, record, "moved").stdout == "/scratch/me/r00013.log"
    assert logs.allocation_logs(plan, record, "join") is None  # never submitted


def test_a_resumed_task_is_found_in_the_attempt_that_ran_it(plan):
    record = _record(
        log_dir="/L",
        job_ids={"prep": "10", "shards": "21"},
        attempt=2,
        attempts=[
            {"number": 1, "submission": "submitted", "job_ids": {"prep": "10", "shards": "11"}},
            {"number": 2, "submission": "submitted", "job_ids": {"shards": "21"}, "subsets": {"shards": "2"}},
        ],
    )
    assert logs.allocation_logs(plan, record, "shards", 2).stdout == "/L/shards_21_2.out"
    assert logs.allocation_logs(plan, record, "shards", 1).stdout == "/L/shards_11_1.out"


def test_a_dag_from_before_log_folders_points_at_slurms_default(plan):
    record = _record(log_dir=None, job_ids={"prep": "10", "shards": "11"})
    assert logs.allocation_logs(plan, record, "prep").stdout == "/home/me/proj/slurm-10.out"
    assert logs.allocation_logs(plan, record, "shards", 0).stdout == "/home/me/proj/slurm-11_0.out"


def test_parts_of_a_split_group_map_back_to_the_groups_task_index():
    group = PlannedJob(name="g", kind="allocation", options={}, script="", array="0-9", tasks=20)
    part = PlannedJob(
        name="g+part2", kind="part", options={}, script="", array="0-9", tasks=10, part_of="g", task_offset=10
    )
    plan = logs.Plan(workflow="w", jobs=[group, part])
    record = _record(log_dir="/L", job_ids={"g": "5", "g+part2": "6"})
    assert logs.tasks_of(plan, "g") == list(range(20))
    assert logs.allocation_logs(plan, record, "g", 13).stdout == "/L/g+part2_6_3.out"
    assert logs.allocation_logs(plan, record, "g", 3).stdout == "/L/g_5_3.out"
