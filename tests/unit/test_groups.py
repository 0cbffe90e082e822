"""Groups (`group:`, `fuse: auto`): what compiles into one Slurm job, what is refused and where, and the group job's
runner deciding its members from their outcomes (docs/semantics.md, Groups). The real behaviour in Slurm is
tests/integration/test_groups_cluster.py; here srun is a stub that runs the member's code, so only the runner's
decisions are checked."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Hosting, Plan


def chain(n: int, extra: str = "", fuse: str = "fuse: auto\n", fail: int | None = None) -> str:
    lines = [f"name: chain\n{fuse}defaults:\n  walltime: 1\n  ntasks: 1\nallocations:"]
    for i in range(1, n + 1):
        entry = "exit 3" if i == fail else "true"
        dep = f"\n    depends_on: [a{i - 1:02d}]" if i > 1 else ""
        lines.append(f'  - name: a{i:02d}\n    entrypoint: "{entry}"{dep}')
    return "\n".join(lines) + "\n" + extra


def test_fuse_auto_makes_a_30_chain_one_job_with_30_steps():
    plan = compile_text(chain(30), "w.yaml")
    hosts = [j for j in plan.submissions()]
    assert [j.name for j in hosts] == ["a01..a30+group"]
    host = hosts[0]
    assert host.kind == "host" and host.dependency is None and host.walltime == 30 * 60
    assert host.members == tuple(f"a{i:02d}" for i in range(1, 31))
    assert plan.job("a07").host == Hosting("a01..a30+group", step="a07") and plan.job("a07").dependency is None
    assert len(plan.allocations()) == 30
    assert host.why and "fuse: auto" in host.why[0]


def test_fuse_auto_leaves_out_a_member_whose_failure_is_handled_outside():
    handler = '  - name: notify\n    entrypoint: "true"\n    depends_on: [{a07: failure}]\n'
    plan = compile_text(chain(30, handler), "w.yaml")
    names = [j.name for j in plan.submissions()]
    assert names == ["a01..a06+group", "a07", "a08..a30+group", "notify"]
    a07, notify, rest = plan.job("a07"), plan.job("notify"), plan.job("a08..a30+group")
    assert [(t.kind, t.parent) for t in a07.dependency.terms] == [("afterok", "a01..a06+group")]
    assert [(t.kind, t.parent) for t in notify.dependency.terms] == [
        ("afternotok", "a07"),
        ("afterok", "a01..a06+group"),
    ]
    assert [(t.kind, t.parent) for t in rest.dependency.terms] == [("afterok", "a07")]
    assert any("left 'a07' out" in line for line in plan.job("a01..a06+group").why)


def test_children_outside_wait_on_the_group_job_and_it_exits_as_its_outcome_member():
    extra = '  - name: after\n    entrypoint: "true"\n    depends_on: [a05]\n    mem: 100M\n'
    plan = compile_text(chain(5, extra), "w.yaml")
    assert [(t.kind, t.parent) for t in plan.job("after").dependency.terms] == [("afterok", "a01..a05+group")]
    assert plan.job("a01..a05+group").script.rstrip().endswith("# the outcome children outside see: a05")


def test_explicit_group_with_group_walltime_and_any_child():
    text = """name: g
groups:
  work: {walltime: 2h}
defaults: {walltime: 10}
allocations:
  - {name: prep, entrypoint: "true", group: work}
  - {name: train, entrypoint: "true", group: work, depends_on: [prep]}
  - {name: cleanup, entrypoint: "true", group: work, depends_on: [{train: any}]}
  - {name: report, entrypoint: "true", depends_on: [{cleanup: any}, {train: any}]}
"""
    plan = compile_text(text, "w.yaml")
    host = plan.job("work+group")
    assert host.walltime == 7200 and host.members == ("prep", "train", "cleanup")
    assert [(t.kind, t.parent) for t in plan.job("report").dependency.terms] == [("afterany", "work+group")]
    assert [j.name for j in plan.submissions()] == ["work+group", "report"]


def _refused(text: str) -> str:
    with pytest.raises(InputError) as e:
        compile_text(text, "w.yaml")
    return "\n".join(str(p) for p in e.value.problems)


def test_members_that_cannot_share_one_allocation_are_refused_where_they_say_group():
    text = """name: g
allocations:
  - {name: a, entrypoint: "true", group: work}
  - {name: b, entrypoint: "true", group: work, depends_on: [a], mem: 2G}
"""
    msg = _refused(text)
    assert msg.startswith("w.yaml:4:42: ") and "cannot share one allocation" in msg and "--mem" in msg


def test_a_failure_handled_outside_a_member_with_a_parent_inside_is_refused():
    text = """name: g
allocations:
  - {name: a, entrypoint: "true", group: work}
  - {name: b, entrypoint: "true", group: work, depends_on: [a]}
  - {name: h, entrypoint: "true", depends_on: [{b: failure}]}
"""
    msg = _refused(text)
    assert msg.startswith("w.yaml:4:42: ") and "cannot tell 'b failed' from 'b never ran'" in msg


@pytest.mark.parametrize(
    ("allocs", "why"),
    [
        (
            '  - {name: x, entrypoint: "true"}\n'
            '  - {name: a, entrypoint: "true", group: work, depends_on: [x]}\n'
            '  - {name: b, entrypoint: "true", group: work, depends_on: [x]}\n',
            "both have parents outside the group",
        ),
        (
            '  - {name: a, entrypoint: "true", group: work}\n'
            '  - {name: b, entrypoint: "true", group: work, depends_on: [{a: any}]}\n'
            '  - {name: x, entrypoint: "true", depends_on: [a]}\n'
            '  - {name: y, entrypoint: "true", depends_on: [b]}\n',
            "only one member may have success/failure children outside it",
        ),
        (
            '  - {name: p, entrypoint: "true"}\n'
            '  - {name: a, entrypoint: "true", group: work, depends_on: [p]}\n'
            '  - {name: b, entrypoint: "true", group: work, depends_on: [{a: any}]}\n',
            "would run even if 'a' never ran",
        ),
        (
            '  - {name: a, entrypoint: "true", group: work, tasks: 2}\n'
            '  - {name: b, entrypoint: "true", group: work, depends_on: [a]}\n',
            "a task group",
        ),
        ('  - {name: a, entrypoint: "true", group: work}\n', "has one member only"),
    ],
)
def test_groups_that_cannot_be_exact_are_refused_with_why(allocs: str, why: str):
    msg = _refused("name: g\nallocations:\n" + allocs)
    assert msg.startswith("w.yaml:") and why in msg


def test_group_keys_are_validated():
    msg = _refused(
        'name: g\nfuse: always\ngroups:\n  ghost: {wall: 1}\nallocations:\n  - {name: a, entrypoint: "true"}\n'
    )
    assert "w.yaml:2:7: `fuse` must be one of none, auto" in msg
    assert "w.yaml:4:11: unknown key 'wall' in group 'ghost'" in msg
    assert "w.yaml:4:3: group 'ghost' has no members" in msg


# --- the runner, with srun replaced by a stub that runs the member's code ---------------------------------------


def _run_host(tmp_path: Path, text: str, host: str) -> dict[str, str]:
    """Run a group job's script with a stub srun; returns member -> 'ok'/'failed'/'none' and the exit status."""
    plan = compile_text(text, "w.yaml")
    stub = tmp_path / "bin" / "srun"
    stub.parent.mkdir()
    stub.write_text(
        '#!/bin/bash\nname=""\nwhile [[ "$1" == --* ]]; do\n'
        '  case "$1" in --job-name=*) name="${1#--job-name=}";; esac\n'
        '  shift\ndone\necho "$name" >> "$RAN"\nexec "$@"\n'
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    script = tmp_path / "host.sh"
    script.write_text(plan.job(host).script)
    ran = tmp_path / "ran"
    ran.touch()
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}", "RAN": str(ran)}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    out = {m: "ran" for m in ran.read_text().split()}
    out["exit"] = str(proc.returncode)
    return out


def test_runner_follows_the_edges_inside_the_group(tmp_path: Path):
    text = """name: g
allocations:
  - {name: a, entrypoint: "true", group: w}
  - {name: b, entrypoint: "exit 4", group: w, depends_on: [a]}
  - {name: c, entrypoint: "true", group: w, depends_on: [b]}
  - {name: on-b-failed, entrypoint: "true", group: w, depends_on: [{b: failure}]}
  - {name: on-a-failed, entrypoint: "true", group: w, depends_on: [{a: failure}]}
  - {name: always, entrypoint: "true", group: w, depends_on: [{c: any}]}
  - {name: either, entrypoint: "true", group: w, depends_on_any: [c, on-b-failed]}
"""
    got = _run_host(tmp_path, text, "w+group")
    assert set(got) - {"exit"} == {"a", "b", "on-b-failed", "always", "either"}
    assert got["exit"] == "1"  # a member failed and no child outside names an outcome member


# --- resume and redo of a group (pure: runs/resume_plan.py) ------------------------------------------------------


def _outcomes(states: dict[str, str]):
    from slurmdag.model.states import AllocationState
    from slurmdag.runs.resume_plan import Outcome

    return {name: Outcome(AllocationState(state)) for name, state in states.items()}


def test_resume_runs_the_group_job_again_with_only_what_did_not_complete():
    from slurmdag.runs.resume_plan import plan_resume

    plan = compile_text(chain(5), "w.yaml")
    host = "a01..a05+group"
    outcomes = _outcomes(
        {"a01": "Completed", "a02": "Completed", "a03": "Failed", "a04": "Cancelled", "a05": "Cancelled"}
    )
    sub = plan_resume(plan, outcomes)
    again = {j.name: j for j in sub.jobs}
    assert set(again) == {host, "a03", "a04", "a05"}
    assert again[host].members == ("a03", "a04", "a05") and again[host].dependency is None
    script = again[host].script
    assert "_sd_0=ok  # a01: not run again" in script and "_sd_1=ok  # a02: not run again" in script
    assert "--job-name=a01 " not in script and "--job-name=a03 " in script
    assert [j.name for j in Plan(plan.workflow, sub.jobs).submissions()] == [host]


def test_redo_of_one_member_keeps_the_others_outcomes_and_cascade_takes_its_descendants():
    from slurmdag.runs.resume_plan import plan_redo

    plan = compile_text(chain(4), "w.yaml")
    host = "a01..a04+group"
    outcomes = _outcomes({f"a0{i}": "Completed" for i in range(1, 5)})
    one = plan_redo(plan, outcomes, "a02")
    assert {j.name for j in one.jobs} == {host, "a02"} and one.jobs[0].members == ("a02",)
    assert "_sd_2=ok  # a03: not run again" in one.jobs[0].script
    down = plan_redo(plan, outcomes, "a02", cascade=True)
    assert down.jobs[0].members == ("a02", "a03", "a04")


def test_redo_cascade_of_a_groups_outcome_member_reaches_its_children_outside():
    from slurmdag.runs.resume_plan import plan_redo

    plan = compile_text(chain(3, '  - {name: after, entrypoint: "true", depends_on: [a03], mem: 100M}\n'), "w.yaml")
    outcomes = _outcomes({"a01": "Completed", "a02": "Completed", "a03": "Completed", "after": "Completed"})
    sub = plan_redo(plan, outcomes, "a03", cascade=True)
    assert {j.name for j in sub.jobs} == {"a01..a03+group", "a03", "after"}


# Recorded on the project's Slurm 22.05.8 cluster: `sacct -n -P -o SACCT_FIELDS -j 15532` (without -X) of a batch job
# that ran six steps (`srun --job-name=m1 ...`; m3 cancelled with scancel, m5 over its step --time).
SACCT_WITH_STEPS = """\
15532|15532|FAILED|3:0|00:01:44|2026-12-01T15:39:42|2026-12-01T15:41:26|node1|None|j.sh
15532.batch|15532.batch|FAILED|3:0|00:01:44|2026-12-01T15:39:42|2026-12-01T15:41:26|node1||batch
15532.0|15532.0|COMPLETED|0:0|00:00:00|2026-12-01T15:39:42|2026-12-01T15:39:42|node1||m1
15532.1|15532.1|FAILED|3:0|00:00:00|2026-12-01T15:39:42|2026-12-01T15:39:42|node1||m2
15532.2|15532.2|CANCELLED by 0|0:9|00:00:22|2026-12-01T15:39:43|2026-12-01T15:40:05|node1||m3
15532.3|15532.3|COMPLETED|0:0|00:00:00|2026-12-01T15:40:05|2026-12-01T15:40:05|node1||m4
15532.4|15532.4|COMPLETED|0:0|00:00:00|2026-12-01T15:40:05|2026-12-01T15:40:05|node1||hostname
15532.5|15532.5|TIMEOUT|0:15|00:01:21|2026-12-01T15:40:05|2026-12-01T15:41:26|node1||m5
"""


def test_sacct_step_rows_are_kept_only_when_asked_for():
    from slurmdag.backends.parse import parse_sacct

    assert set(parse_sacct(SACCT_WITH_STEPS)) == {"15532"}
    rows = parse_sacct(SACCT_WITH_STEPS, steps=True)
    assert rows["15532"].step is None and rows["15532"].state == "FAILED"
    assert rows["15532.batch"].step == "batch"
    got = {k: (r.name, r.state, r.exit_code, r.signal) for k, r in rows.items() if r.step not in (None, "batch")}
    assert got == {
        "15532.0": ("m1", "COMPLETED", 0, 0),
        "15532.1": ("m2", "FAILED", 3, 0),
        "15532.2": ("m3", "CANCELLED", 0, 9),
        "15532.3": ("m4", "COMPLETED", 0, 0),
        "15532.4": ("hostname", "COMPLETED", 0, 0),
        "15532.5": ("m5", "TIMEOUT", 0, 15),
    }
    assert {r.array_job_id for r in rows.values()} == {"15532"}


@pytest.mark.parametrize("key", ["on_failure: stop", "outputs: [x], stop_if: 'outputs.a.x == 1'", "retries: 1"])
def test_members_that_act_from_their_own_job_are_refused(key: str):
    text = (
        "name: g\nallocations:\n"
        '  - {name: a, entrypoint: "true", group: work, ' + key + "}\n"
        '  - {name: b, entrypoint: "true", group: work, depends_on: [a]}\n'
    )
    msg = _refused(text)
    assert msg.startswith("w.yaml:3:") and "cannot be a member of group 'work'" in msg
