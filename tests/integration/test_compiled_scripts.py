"""Every compiled batch script is one Slurm accepts: `sbatch --test-only` on the real cluster (dependencies aside).

Covers a workflow that uses every key mapped to an sbatch option that this cluster can satisfy, and every example
workflow shipped in examples/. The few example allocations that ask for more than this 3-node cluster has (64 nodes,
a site's `--uenv` plugin, 4 GB per task) are listed with the refusal Slurm must give, so any other refusal fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slurmdag.cli.authoring import write_plan_dir
from slurmdag.compiler.compile import compile_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").rglob("*.yaml"))

EVERY_KEY = """\
name: every-key
defaults:
  partition: debug
  walltime: "0:10:00"
  account: {account}
  qos: normal
allocations:
  - name: resources
    entrypoint: "true"
    nodes: 2
    ntasks: 4
    ntasks_per_node: 2
    cpus_per_task: 1
    mem: 200M
    workdir: {workdir}
    output: "{workdir}/%x-%j.out"
    error: "{workdir}/%x-%j.err"
    env: {{GREETING: "hello world", QUOTE: "it's \\"quoted\\""}}
    setup: ["echo setting up"]
    sbatch: ["--mail-type=END", "--requeue", "--nice=10"]
  - name: exclusive-node
    entrypoint: "true"
    exclusive: true
    mem_per_cpu: 100M
    depends_on: [resources]
  - name: array-throttled
    array: "0-9%3"
    walltime: 5
    depends_on: [{{resources: any}}]
    entrypoint: "echo $SLURMDAG_TASK_INDEX"
  - name: matrix
    matrix: {{k: [a, b], n: [1, 2, 3]}}
    walltime: 90m
    entrypoint: "echo $SLURMDAG_MATRIX_K $SLURMDAG_MATRIX_N"
  - name: corr
    tasks: 6
    walltime: 1d2h
    depends_on: [{{matrix: corresponding}}]
    entrypoint: "true"
  - name: either
    depends_on_any: [exclusive-node, array-throttled]
    depends_on: [{{corr: failure}}]
    entrypoint: "true"
"""

# (example file name, allocation) -> what Slurm says when the example asks for more than this cluster has.
BEYOND_THIS_CLUSTER = {
    ("training-pipeline.yaml", "train"): "node configuration is not available",  # 64 nodes
    ("design-example.yaml", "train"): "unrecognized option '--uenv",  # a site SPANK plugin, absent here
    ("sweep.yaml", "sweep"): "node configuration is not available",  # 4 GB per task; nodes have 2000 MB
}


def sbatch_test_only(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sbatch", "--test-only", str(script)], capture_output=True, text=True, env=env, cwd=script.parent, timeout=60
    )


def compiled_scripts(workflow: Path, out: Path) -> list[Path]:
    write_plan_dir(compile_file(workflow), out)
    scripts = sorted(out.glob("*.sbatch"))
    assert scripts, f"no scripts compiled from {workflow}"
    return scripts


def default_account(slurm) -> str:
    out = slurm.run("sacctmgr", "-n", "-P", "show", "user", "root", "format=DefaultAccount").stdout.split()
    return out[0] if out else "root"


def test_every_key_compiles_to_scripts_slurm_accepts(slurm, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    wf = tmp_path / "every-key.yaml"
    wf.write_text(EVERY_KEY.format(account=default_account(slurm), workdir=workdir))
    scripts = compiled_scripts(wf, tmp_path / "out")
    # the OR part of `either` goes through a join job: that script must be accepted too
    assert any("+" in s.name for s in scripts)
    refused = {
        s.name: (r.stderr or r.stdout).strip() for s in scripts if (r := sbatch_test_only(s, slurm.env())).returncode
    }
    assert refused == {}


@pytest.mark.parametrize("workflow", EXAMPLES, ids=lambda p: str(p.relative_to(REPO / "examples")))
def test_example_scripts_are_accepted_by_slurm(workflow, slurm, tmp_path):
    for script in compiled_scripts(workflow, tmp_path / "out"):
        r = sbatch_test_only(script, slurm.env())
        expected = BEYOND_THIS_CLUSTER.get((workflow.name, script.stem))
        if expected is None:
            assert r.returncode == 0, f"{script.name}: {r.stderr or r.stdout}"
        else:
            assert r.returncode != 0 and expected in (r.stderr + r.stdout).lower(), f"{script.name}: {r.stderr}"
