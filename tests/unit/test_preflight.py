"""Pre-flight checks on recorded real Slurm 22.05 output, array splitting for MaxArraySize, concurrency lanes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurmdag.backends import cluster_parse
from slurmdag.backends.base import JobInfo
from slurmdag.backends.cluster_info import Accounting, Association, ClusterInfo, QosLimits, QueuedJob
from slurmdag.compiler.array_split import chunks, split_plan
from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.lanes import apply_max_concurrent
from slurmdag.model.states import AllocationState
from slurmdag.policy import preflight
from slurmdag.runs.status import build_status
from slurmdag.state.store import DagRecord

DATA = Path(__file__).parent / "data" / "preflight"


def _cluster(**changes) -> ClusterInfo:
    info = ClusterInfo(
        user="alice",
        config=cluster_parse.parse_config((DATA / "scontrol_show_config.txt").read_text()),
        partitions=cluster_parse.parse_partitions((DATA / "scontrol_show_partition.txt").read_text()),
        nodes=cluster_parse.parse_nodes((DATA / "scontrol_show_node.txt").read_text()),
        sbatch_options=cluster_parse.parse_sbatch_help((DATA / "sbatch_help.txt").read_text()),
    )
    return dataclasses.replace(info, **changes)


def _plan(text: str):
    return compile_text("name: w\nallocations:\n" + text, file="w.yaml")


def test_parsers_read_real_output():
    c = _cluster()
    assert c.max_array_size() == 1001 and c.max_job_count() == 10000
    assert c.config["MinJobAge"] == "300 sec"
    assert c.default_partition() == "debug"
    assert c.partitions["debug"].nodes == ["node1", "node2", "node3"]
    assert [(n.name, n.cpus, n.memory_mb) for n in c.nodes] == [
        ("node1", 4, 2000),
        ("node2", 4, 2000),
        ("node3", 4, 2000),
    ]
    assert "dependency" in c.sbatch_options and "uenv" not in c.sbatch_options


def test_hostlists():
    assert cluster_parse.expand_hostlist("node[1-3,5],gpu[08-10],x") == [
        "node1",
        "node2",
        "node3",
        "node5",
        "gpu08",
        "gpu09",
        "gpu10",
        "x",
    ]


def test_resources_partition_and_plugin_checks():
    plan = _plan(
        "  - {name: ok, entrypoint: x, cpus_per_task: 4, mem: 2000M}\n"
        "  - {name: fat, entrypoint: x, cpus_per_task: 5}\n"
        "  - {name: bigmem, entrypoint: x, mem: 3G}\n"
        "  - {name: many, entrypoint: x, nodes: 4}\n"
        "  - {name: nopart, entrypoint: x, partition: gpu}\n"
        "  - {name: env, entrypoint: x, uenv: 'prgenv-gnu/24.11:v1'}\n"
    )
    verdict = preflight.check(plan, _cluster())
    text = "\n".join(p.message for p in verdict.problems)
    assert "'ok'" not in text
    assert "allocation 'fat' cannot run: it asks for 1 node(s) with 5 CPUs each; partition 'debug' has 0 such" in text
    assert "allocation 'bigmem' cannot run: it asks for 1 node(s) with 1 CPUs and 3072 MB each" in text
    assert "allocation 'many' cannot run: it asks for 4 node(s)" in text
    assert "partition 'gpu' does not exist on this cluster" in text
    assert "allocation 'env' uses --uenv, which this cluster's sbatch does not know" in text
    assert len(verdict.problems) == 5


def test_submit_limit_refuses_with_numbers():
    plan = _plan("".join(f"  - {{name: j{i}, entrypoint: x}}\n" for i in range(30)))
    lab = Accounting("lab", [Association("lab", None, 20, None, ("normal",))], [QosLimits("normal", None, None)])
    queued = [QueuedJob(str(i), "normal", "lab") for i in range(3)]
    cluster = _cluster(accounting=lab, queued=queued)
    verdict = preflight.check(plan, cluster)
    assert [p.message for p in verdict.problems] == [
        "the DAG needs 31 job slots but MaxSubmitJobs of association alice/lab is 20 and 3 of your jobs are already "
        "queued, leaving 17: 14 too many"
    ]
    ok = preflight.check(_plan("  - {name: j, entrypoint: x, tasks: 5}\n"), cluster)
    assert ok.ok and ok.jobs_needed == 6  # 5 tasks + the gate


def test_submit_limits_from_sacctmgr_rows():
    accounting = Accounting(
        cluster_parse.parse_default_account("lab\n"),
        cluster_parse.parse_associations("lab||20||normal\nother||5||normal\nlab|debug|2||normal\n"),
        cluster_parse.parse_qos("normal|||\nsmall|10||\n"),
    )
    queued = cluster_parse.parse_queue("1|normal|lab\n2|small|lab\n")
    plan = _plan("  - {name: j, entrypoint: x, qos: small}\n")
    limits = preflight.submit_limits(_cluster(accounting=accounting, queued=queued), plan)
    assert [(lim.value, lim.what, lim.in_use, lim.qos) for lim in limits] == [
        (20, "MaxSubmitJobs of association alice/lab", 2, None),
        (10, "MaxSubmitJobsPerUser of QOS small", 1, "small"),
    ]


def test_chunks_rebase_to_max_array_size():
    cut, throttle = chunks("0-24%4", 11)
    assert [(c.base, c.slurm_array(throttle)) for c in cut] == [(0, "0-10%4"), (11, "0-10%4"), (22, "0-2%4")]
    cut, _ = chunks("5-30:5", 11)
    assert [(c.base, c.indexes) for c in cut] == [(5, (5, 10, 15)), (20, (20, 25, 30))]
    assert [c.base for c in chunks("0-10", 11)[0]] == [0]


def test_split_keeps_corresponding_exact_and_and_edges():
    plan = _plan(
        "  - {name: p, entrypoint: 'echo $SLURMDAG_TASK_INDEX', tasks: 25}\n"
        "  - {name: c, entrypoint: x, tasks: 25, depends_on: [{p: corresponding}]}\n"
        "  - {name: after, entrypoint: x, depends_on: [p, {c: any}]}\n"
    )
    split, problems, notes = split_plan(plan, 11)
    assert problems == [] and len(notes) == 2
    jobs = {j.name: j for j in split.jobs}
    assert [j.name for j in split.jobs] == ["p", "p+part2", "p+part3", "c", "c+part2", "c+part3", "after"]
    assert [(jobs[n].array, jobs[n].task_offset, jobs[n].kind) for n in ("p", "p+part2", "p+part3")] == [
        ("0-10", 0, "allocation"),
        ("0-10", 11, "part"),
        ("0-2", 22, "part"),
    ]
    assert [jobs[n].dependency.render({k: k for k in jobs}) for n in ("c", "c+part2", "c+part3")] == [
        "aftercorr:p",
        "aftercorr:p+part2",
        "aftercorr:p+part3",
    ]
    assert jobs["after"].dependency.render({k: k for k in jobs}) == (
        "afterok:p,afterok:p+part2,afterok:p+part3,afterany:c,afterany:c+part2,afterany:c+part3"
    )
    script = jobs["p+part3"].script
    assert "#SBATCH --array=0-2\n" in script
    assert "SLURM_ARRAY_TASK_ID=$((SLURM_ARRAY_TASK_ID + 22)); export SLURM_ARRAY_TASK_ID" in script
    assert script.index("SLURM_ARRAY_TASK_ID + 22") < script.index("export SLURMDAG_TASK_INDEX")
    assert "+ 0" not in jobs["p"].script and "SLURMDAG_SLURM_ARRAY_TASK_ID" not in jobs["p"].script


def test_split_refuses_failure_and_or_edges():
    plan = _plan(
        "  - {name: p, entrypoint: x, tasks: 25}\n"
        "  - {name: h, entrypoint: x, depends_on: [{p: failure}]}\n"
        "  - {name: o, entrypoint: x}\n"
        "  - {name: any, entrypoint: x, depends_on_any: [p, o]}\n"
    )
    _, problems, _ = split_plan(plan, 11)
    assert len(problems) == 2
    assert "'h' uses it in a `failure` edge" in problems[0].message
    assert "'any' uses it in depends_on_any" in problems[1].message


def test_status_folds_split_group_into_one_allocation():
    plan, _, _ = split_plan(_plan("  - {name: p, entrypoint: x, tasks: 25}\n"), 11)
    ids = {"p": "100", "p+part2": "101", "p+part3": "102"}
    infos = {}
    for name, jid in ids.items():
        for t in range(plan.job(name).tasks):
            state = "FAILED" if (name, t) == ("p+part2", 3) else "COMPLETED"
            infos[f"{jid}_{t}"] = JobInfo(
                f"{jid}_{t}",
                jid,
                t,
                f"sd-abcd1234-{name}",
                state,
                exit_code=1 if state == "FAILED" else 0,
                node_list="node1",
            )
    record = DagRecord(
        dag_id="abcd1234", name="w", created="2026-01-01T00:00:00+00:00", submission="submitted", job_ids=ids
    )
    status = build_status(record, plan, infos)
    [node] = status.allocations()
    assert [t.index for t in node.tasks] == list(range(25))
    assert node.tasks[14].job_id == "101_3" and node.tasks[14].state is AllocationState.FAILED
    assert node.state is AllocationState.FAILED and node.exit_code == 1


def test_lanes_cap_a_fan_out():
    plan = _plan(
        "  - {name: root, entrypoint: x, walltime: 1}\n"
        + "".join(f"  - {{name: f{i}, entrypoint: x, walltime: 1, depends_on: [root]}}\n" for i in range(10))
    )
    laned = apply_max_concurrent(plan, 2)
    deps = {
        j.name: j.dependency.render({k: k for k in [x.name for x in laned.jobs]}) if j.dependency else None
        for j in laned.jobs
    }
    assert deps["root"] is None
    assert deps["f0"] == "afterok:root"  # root's lane, and root already a parent
    assert deps["f1"] == "afterok:root"  # the second lane, still empty
    assert deps["f2"] == "afterok:root,afterany:f0"
    # simulate: at most 2 jobs can ever be eligible-and-running at once
    assert _max_parallel(laned) <= 2


def _max_parallel(plan) -> int:
    """Unit-length jobs started as soon as their dependencies (AND of whole-job terms) are done."""
    done_at: dict[str, int] = {}
    for job in plan.jobs:
        start = max((done_at[t.parent] for t in (job.dependency.terms if job.dependency else ())), default=0)
        done_at[job.name] = start + 1
    starts = [done_at[j.name] - 1 for j in plan.jobs]
    return max(starts.count(s) for s in set(starts))


def test_lanes_throttle_arrays_and_wrap_or_dependencies():
    plan = _plan(
        "  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x}\n"
        "  - {name: g, entrypoint: x, tasks: 8, depends_on_any: [a, b]}\n"
        "  - {name: h, entrypoint: x, tasks: 8, depends_on: [{g: corresponding}]}\n"
    )
    laned = apply_max_concurrent(plan, 3)
    jobs = {j.name: j for j in laned.jobs}
    names = {k: k for k in jobs}
    assert jobs["g"].array == "0-7%3" and jobs["h"].array == "0-7%3"
    assert jobs["g+any"].dependency.render(names) == "afterok:a?afterok:b"
    assert jobs["g"].dependency.render(names) == "afterok:g+any,afterany:a,afterany:b"
    assert jobs["h"].dependency.render(names) == "aftercorr:g,afterany:g"  # g's throttle and h's never overlap


def test_lanes_reject_zero():
    with pytest.raises(ValueError):
        apply_max_concurrent(_plan("  - {name: a, entrypoint: x}\n"), 0)
