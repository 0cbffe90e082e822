"""auto_array's pure pass: which siblings share one array job, and why the others do not."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmdag.backends.base import JobInfo
from slurmdag.compiler import packing, render
from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.lanes import apply_max_concurrent
from slurmdag.compiler.packing import MAX_PACK, find_packs
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Dependency, DependencyTerm, Hosting, Plan
from slurmdag.model.states import AllocationState, DagState
from slurmdag.policy import preflight
from slurmdag.policy.limits import Limit, check_plan, default_policy, parse_site, parse_site_auto_array
from slurmdag.runs.cancel import cancel_targets, slurm_ids
from slurmdag.runs.cancel_allocations import failure_handlers
from slurmdag.runs.resume_plan import Outcome, plan_redo, plan_resume
from slurmdag.runs.status import build_status
from slurmdag.runs.submit import describe
from slurmdag.state.store import DagRecord
from slurmdag.views.graph_formats import render_graph


def _plan(allocations: str) -> Plan:
    return compile_text("name: w\nallocations:\n" + allocations, file="w.yaml")


def _packs(plan: Plan, shebangs: dict[str, str] | None = None, **kw):
    """find_packs over the plan's jobs; `shebangs` replaces some scripts' #! line (as a `script:` of its own would)."""
    jobs = [
        dataclasses.replace(j, script=shebangs[j.name] + "\n" + j.script.split("\n", 1)[1])
        if j.name in (shebangs or {})
        else j
        for j in plan.jobs
    ]
    return find_packs(jobs, **kw)


def _fan(n: int, extra: str = "") -> str:
    lines = ["  - {name: first, entrypoint: 'true'}"]
    lines += [f"  - {{name: m{i:03d}, entrypoint: 'echo {i}', depends_on: [first]{extra}}}" for i in range(n)]
    lines.append("  - {name: last, entrypoint: 'true', depends_on: [" + ", ".join(f"m{i:03d}" for i in range(n)) + "]}")
    return "\n".join(lines) + "\n"


def test_siblings_with_equal_options_and_dependencies_are_one_array():
    packing = _packs(_plan(_fan(100)))
    assert len(packing.packs) == 1
    pack = packing.packs[0]
    assert pack.members == tuple(f"m{i:03d}" for i in range(100))  # task i is the i-th sibling in plan order
    assert "100 siblings" in pack.why and "afterok:first" in pack.why
    assert packing.unpacked == ()
    assert packing.host_of()["m042"] == (0, 42)


def test_roots_are_siblings_too():
    plan = _plan("  - {name: a, entrypoint: 'true'}\n  - {name: b, entrypoint: 'false'}\n")
    assert [p.members for p in _packs(plan).packs] == [("a", "b")]


def test_different_dependencies_are_not_siblings():
    plan = _plan(
        "  - {name: p, entrypoint: 'true'}\n"
        "  - {name: q, entrypoint: 'true'}\n"
        "  - {name: a, entrypoint: 'true', depends_on: [p]}\n"
        "  - {name: b, entrypoint: 'true', depends_on: [q]}\n"
        "  - {name: c, entrypoint: 'true', depends_on: [{p: any}]}\n"
    )
    assert [p.members for p in _packs(plan).packs] == [("p", "q")]


def test_options_that_differ_keep_an_allocation_out_and_say_which():
    plan = _plan(
        "  - {name: a, entrypoint: 'true', mem: 1G}\n"
        "  - {name: b, entrypoint: 'true', mem: 1G}\n"
        "  - {name: c, entrypoint: 'true', mem: 2G}\n"
        "  - {name: d, entrypoint: 'true', mem: 1G, walltime: 10}\n"
    )
    packing = _packs(plan)
    assert [p.members for p in packing.packs] == [("a", "b")]
    why = {u.name: u.why for u in packing.unpacked}
    assert why["c"] == "options differ from sibling 'a': mem '2G' vs '1G'"
    assert why["d"] == "options differ from sibling 'a': walltime 600 s vs None s"


def test_what_cannot_be_packed_is_named_when_it_has_siblings():
    plan = _plan(
        "  - {name: a, entrypoint: 'true'}\n"
        "  - {name: b, entrypoint: 'true'}\n"
        "  - {name: r, entrypoint: 'true', retries: 2}\n"
        "  - {name: py, entrypoint: 'true'}\n"
        "  - {name: tg, entrypoint: 'true', tasks: 4}\n"
        "  - {name: st, entrypoint: 'true', on_failure: stop}\n"
        "  - {name: si, entrypoint: 'true', stop_if: 'outputs.si.loss > 5'}\n"
    )
    packing = _packs(plan, shebangs={"py": "#!/usr/bin/env python3"})
    assert [p.members for p in packing.packs] == [("a", "b")]
    why = {u.name: u.why for u in packing.unpacked}
    assert "retries" in why["r"] and "not a shell script" in why["py"] and "on_failure: stop" in why["st"]
    assert "stop_if" in why["si"]
    assert "tg" not in why  # a task group is an array already: nothing to say


def test_a_lone_allocation_is_not_mentioned():
    plan = _plan("  - {name: a, entrypoint: 'true'}\n  - {name: b, entrypoint: 'true', depends_on: [a]}\n")
    packing = _packs(plan)
    assert packing.packs == () and packing.unpacked == ()


def test_interpreters_differ():
    plan = _plan("  - {name: a, entrypoint: 'true'}\n  - {name: b, entrypoint: 'true'}\n")
    packing = _packs(plan, shebangs={"b": "#!/bin/sh"})
    assert packing.packs == ()
    assert [u.why for u in packing.unpacked] == ["interpreter differs from sibling 'a': #!/bin/sh vs #!/bin/bash"]


def test_more_siblings_than_one_array_holds_make_several():
    packing = _packs(_plan(_fan(7)), max_pack=3)
    assert [len(p.members) for p in packing.packs] == [3, 3]
    assert [u.name for u in packing.unpacked] == ["m006"]
    assert MAX_PACK == 1000
    with pytest.raises(ValueError):
        _packs(_plan(_fan(2)), max_pack=1)


def test_depends_on_any_siblings_pack_when_their_or_is_the_same():
    plan = _plan(
        "  - {name: p, entrypoint: 'true', mem: 1G}\n"
        "  - {name: q, entrypoint: 'true', mem: 2G}\n"
        "  - {name: a, entrypoint: 'true', depends_on_any: [p, q]}\n"
        "  - {name: b, entrypoint: 'true', depends_on_any: [p, q]}\n"
    )
    packing = _packs(plan)
    assert [p.members for p in packing.packs] == [("a", "b")]
    assert "afterok:p?afterok:q" in packing.packs[0].why


# --- the packed plan, and what reads it ---

FAN = """name: fan
auto_array: true
allocations:
  - {name: first, entrypoint: 'true'}
  - {name: a, entrypoint: 'echo a', depends_on: [first]}
  - {name: b, entrypoint: 'exit 3', depends_on: [first]}
  - {name: c, entrypoint: 'echo c', depends_on: [first]}
  - {name: b-failed, entrypoint: 'echo handler', depends_on: [{b: failure}]}
  - {name: b-next, entrypoint: 'true', depends_on: [b]}
  - {name: last, entrypoint: 'true', depends_on: [a, b, c]}
"""


def test_compile_places_the_array_before_its_members_and_children_name_one_member():
    plan = compile_text(FAN, file="fan.yaml")
    assert [j.name for j in plan.jobs][:5] == ["first", "a+array", "a", "b", "c"]
    host = plan.job("a+array")
    assert (host.kind, host.array, host.tasks, host.members) == ("host", "0-2", 3, ("a", "b", "c"))
    assert host.dependency == Dependency("all", (DependencyTerm("afterok", "first"),))
    assert [(plan.job(m).host, plan.job(m).dependency) for m in host.members] == [
        (Hosting("a+array", task=i), None) for i in range(3)
    ]
    assert plan.job("b-next").dependency == Dependency("all", (DependencyTerm("afterok", "b"),))
    assert [j.name for j in plan.submissions()] == ["first", "a+array", "b-failed", "b-next", "last"]
    assert Plan.from_json(plan.to_json()) == plan
    # what submit --dry-run shows: one array job, and each child waiting on its parent's task alone
    shown = {s.name: s.dependency for s in describe(plan)}
    assert shown["a+array"] == "afterok:first"
    assert shown["b-next"] == "afterok:a+array_1"
    assert shown["b-failed"] == "afternotok:a+array_1,afterok:first"
    assert shown["last"] == "afterok:a+array_0,afterok:a+array_1,afterok:a+array_2"
    lines = packing.explain(plan)
    assert lines == [
        "packed 3 allocations into array job a+array (a, b, c): 3 siblings with identical options and "
        "dependencies (afterok:first)"
    ]


def test_the_site_default_packs_and_the_workflow_key_wins():
    text = FAN.replace("auto_array: true\n", "")
    assert not any(j.kind == "host" for j in compile_text(text).jobs)
    assert any(j.kind == "host" for j in compile_text(text, auto_array=True).jobs)
    off = FAN.replace("auto_array: true", "auto_array: false")
    assert not any(j.kind == "host" for j in compile_text(off, auto_array=True).jobs)


def test_auto_array_must_be_a_boolean():
    with pytest.raises(InputError) as e:
        compile_text(FAN.replace("auto_array: true", "auto_array: yes"), file="fan.yaml")
    (problem,) = e.value.problems
    assert (problem.line, problem.col) == (2, 13)
    assert "`auto_array` must be true or false" in problem.message and "YAML 1.2" in (problem.hint or "")


def test_unpack_gives_back_the_unpacked_plan():
    packed = compile_text(FAN)
    plain = compile_text(FAN.replace("auto_array: true", "auto_array: false"))
    assert packing.unpack(packed) == plain
    assert packing.unpack(plain) is plain


def test_slurm_counts_the_same_jobs_packed_or_not_and_the_policy_the_same_allocations():
    packed = compile_text(FAN)
    plain = packing.unpack(packed)
    assert preflight.job_count(packed) == preflight.job_count(plain) == 1 + 7  # array tasks count one by one
    assert len(packed.allocations()) == len(plain.allocations()) == 7


def test_max_concurrent_lanes_throttle_the_array_and_leave_its_members_alone():
    plan = apply_max_concurrent(compile_text(FAN), 2)
    assert plan.job("a+array").array == "0-2%2"
    assert "#SBATCH --array=0-2%2" in plan.job("a+array").script
    assert all(plan.job(m).dependency is None for m in ("a", "b", "c"))


def _row(job_id, state, name, exit_code=0, array_id=None, task=None):
    return JobInfo(job_id, array_id or job_id, task, f"sd-abcd1234-{name}", state, exit_code=exit_code, node_list="n1")


def test_status_cancel_and_handlers_speak_in_allocation_names():
    plan = compile_text(FAN)
    record = DagRecord(
        "abcd1234",
        "fan",
        "2026-01-01T00:00:00+00:00",
        submission="submitted",
        job_ids={
            "first": "10",
            "a+array": "11",
            "a": "11_0",
            "b": "11_1",
            "c": "11_2",
            "b-failed": "12",
            "b-next": "13",
            "last": "14",
        },
    )
    rows = [
        _row("10", "COMPLETED", "first"),
        _row("11_0", "COMPLETED", "a+array", array_id="11", task=0),
        _row("11_1", "FAILED", "a+array", exit_code=3, array_id="11", task=1),
        _row("11_2", "RUNNING", "a+array", array_id="11", task=2),
        _row("12", "RUNNING", "b-failed"),
        JobInfo("13", "13", None, "sd-abcd1234-b-next", "CANCELLED", node_list=None),
        JobInfo("14", "14", None, "sd-abcd1234-last", "PENDING", reason="Dependency", node_list=None),
    ]
    status = build_status(record, plan, {r.job_id: r for r in rows})
    states = {n.name: (str(n.state), n.job_id) for n in status.allocations()}
    assert states == {
        "first": ("Completed", "10"),
        "a": ("Completed", "11_0"),
        "b": ("Failed", "11_1"),
        "c": ("Running", "11_2"),
        "b-failed": ("Running", "12"),
        "b-next": ("Cancelled", "13"),
        "last": ("Pending", "14"),
    }
    assert status.state is DagState.RUNNING
    targets = cancel_targets(status)
    assert [t.name for t in targets] == ["c", "b-failed", "last"]  # the array job itself is no target
    assert slurm_ids(status, targets) == ["11", "12", "14"]  # the whole array in one id
    assert failure_handlers(plan, {"b"}) == ["b-failed"]


def test_graph_says_which_task_of_which_array_an_allocation_is():
    plan = compile_text(FAN)
    assert "b  (task 1 of array job a+array)" in render_graph(plan, "ascii")
    assert "task 2 of array job a+array" in render_graph(plan, "dot")
    assert "task 0 of array job a+array" in render_graph(plan, "mermaid")


def test_the_site_file_may_set_the_default(tmp_path):
    assert parse_site_auto_array("auto_array: true\nmax_allocations: 10\n", "site.yaml") is True
    assert parse_site_auto_array("max_allocations: 10\n", "site.yaml") is False
    assert parse_site("auto_array: true\n", "site.yaml").values == {}  # a setting, not a limit
    with pytest.raises(InputError) as e:
        parse_site_auto_array("auto_array: 1\n", "site.yaml")
    assert e.value.problems[0].line == 1 and "true or false" in e.value.problems[0].message


def test_the_bound_array_script_names_its_dag_once_for_every_task():
    host = compile_text(FAN).job("a+array")
    script = render.bind_script(host, render.Submission("abcd1234", True, "/logs", "/runs/abcd1234"))
    assert script.count("export SLURMDAG_DAG_ID=") == 1
    location = next(line for line in script.split("\n") if line.startswith("export SLURMDAG_DAG_ID="))
    assert "abcd1234" in location and "/runs/abcd1234" in location
    assert script.index(location) < script.index('case "${SLURM_ARRAY_TASK_ID:-}" in')
    assert "#SBATCH --output=/logs/a+array_%A_%a.out" in script


def test_resume_and_redo_re_run_packed_allocations_as_jobs_of_their_own():
    plan = compile_text(FAN)
    done = Outcome(AllocationState.COMPLETED)
    outcomes = {n: done for n in ("first", "a", "c", "b-next")} | {
        "b": Outcome(AllocationState.FAILED),
        "b-failed": done,
        "last": Outcome(AllocationState.CANCELLED),
    }
    sub = plan_resume(plan, outcomes)
    assert [j.name for j in sub.jobs] == ["b", "last"]
    assert all(j.host is None and j.kind == "allocation" for j in sub.jobs)
    assert sub.jobs[0].dependency is None  # first completed: the term is decided, b waits on the new gate
    assert sub.jobs[1].dependency == Dependency("all", (DependencyTerm("afterok", "b"),))
    redo = plan_redo(plan, outcomes, "a", cascade=True)
    assert [j.name for j in redo.jobs] == ["a"]
    assert "last" in redo.decided  # it also needs b, which failed and is not re-run
    assert redo.jobs[0].host is None and "echo a" in redo.jobs[0].script


def test_preflight_refuses_an_array_the_cluster_cannot_hold_and_counts_after_packing():
    from .test_preflight import _cluster

    plan = compile_text(FAN)
    fits = preflight.check(plan, _cluster())
    assert fits.ok and fits.jobs_needed == 8
    small = _cluster()
    small = dataclasses.replace(small, config={**small.config, "MaxArraySize": "3"})
    refused = preflight.check(plan, small)
    (problem,) = [p for p in refused.problems if "auto_array" in p.message]
    assert "3 allocations into array job 'a+array'" in problem.message and "MaxArraySize=3" in problem.message
    assert "auto_array: false" in (problem.hint or "")


def test_the_allocation_limit_counts_allocations_before_packing():
    policy = default_policy()
    policy.limits["max_allocations"] = Limit("max_allocations", 6, "site.yaml")
    problems = check_plan(compile_text(FAN), policy)
    assert [p.message for p in problems if "max_allocations" in p.message]  # 7 allocations, though 5 jobs


def test_compile_prints_what_docs_workflow_format_shows(tmp_path):
    """The `slurmdag compile examples/auto-array.yaml` lines in docs/workflow-format.md are what compile prints."""
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "-m", "slurmdag", "compile", str(repo / "examples" / "auto-array.yaml"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = [
        line.replace(str(repo / "examples"), "examples").replace(str(out), "build") for line in done.stdout.splitlines()
    ]
    docs = (repo / "docs" / "workflow-format.md").read_text()
    block = docs.split("$ slurmdag compile examples/auto-array.yaml -o build\n...\n", 1)[1].split("```", 1)[0]
    assert block.strip().splitlines() == [line for line in printed if not line.startswith("wrote ")]


def test_the_site_default_reaches_compile_and_submit_through_the_file_reader(tmp_path):
    """`slurmdag compile` of a workflow without `auto_array:` packs when the site file says `auto_array: true`
    (compile_file once dropped the site default: only compile_text passed it on)."""
    assert os.getuid() == 0, "SLURMDAG_SITE_POLICY (a site file for a test) is honoured only for root"
    site = tmp_path / "policy.yaml"
    site.write_text("auto_array: true\n")
    workflow = tmp_path / "fan.yaml"
    workflow.write_text("name: fan\nallocations:\n" + _fan(3))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "SLURMDAG_SITE_POLICY": str(site)}
    args = [sys.executable, "-m", "slurmdag", "compile", str(workflow), "-o", str(tmp_path / "out")]
    packed = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert packed.returncode == 0, packed.stderr
    assert "packed 3 allocations into array job" in packed.stdout, packed.stdout
    site.write_text("auto_array: false\n")
    plain = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "packed" not in plain.stdout, plain.stdout
