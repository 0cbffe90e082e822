"""One renderer for every sbatch option of a job: the script's #SBATCH block and the sbatch command line are both
written from `render.sbatch_options`, so they say the same thing, job name included."""

from __future__ import annotations

import pytest

from slurmdag.compiler import render
from slurmdag.compiler.compile import compile_file, compile_text
from slurmdag.compiler.lanes import apply_max_concurrent
from slurmdag.compiler.script_directives import read_directives
from slurmdag.model.sbatch_options import Token, parse_args
from slurmdag.runs.submit import GATE_NAME, gate_options, job_options, submission_scripts

from .conftest import REPO

EXAMPLES = ["design-example.yaml", "sweep.yaml", "training-pipeline.yaml", "porting/workflow.yaml"]
SUBMISSIONS = [
    render.Submission("0123abcd", log_dir="/home/me/logs/0123abcd"),
    render.Submission("0123abcd", kill_invalid_dep=False, log_dir=None),
]


def block(script: str) -> dict[str, str | None]:
    """The options sbatch applies from a script's #SBATCH block, read with the reader used on users' scripts."""
    d = read_directives(script, "submitted.sbatch")
    # what the reader says about *users'* scripts: a plugin's option, the gate's --hold; anything else is a bug
    expected = ("unknown sbatch option --uenv", "--hold: this option is set by slurmdag")
    assert all(p.message in expected for p in d.problems), d.problems
    return {o.name: o.value for o in d.directives}


def argv_options(argv: list[str]) -> dict[str, str | None]:
    """sbatch's arguments read the way sbatch's getopt reads them."""
    opts, operands, issues = parse_args([Token(a, 1, 1) for a in argv])
    assert operands == []
    assert all(i.message == "unknown sbatch option --uenv" for i in issues)  # a site plugin's option
    return {o.name: o.value for o in opts}


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("submission", SUBMISSIONS, ids=["native", "reconciler"])
def test_submitted_script_and_sbatch_call_agree(example, submission, monkeypatch):
    monkeypatch.chdir(REPO)
    plan = compile_file(f"examples/{example}")
    scripts = submission_scripts(plan, submission)
    for job in plan.jobs:
        argv = argv_options(job_options(job, submission, "afterok:1"))
        assert argv.pop("dependency") == "afterok:1"  # the one option a script cannot hold: it needs job ids
        assert block(scripts[job.name]) == argv, job.name
        assert argv["job-name"] == f"sd-0123abcd-{job.name}"  # the same name in the file and on the command line
        assert argv["comment"] == f"slurmdag:0123abcd:{job.name}"
    assert block(scripts[GATE_NAME]) == argv_options(render.command_line(gate_options(plan, submission)))


@pytest.mark.parametrize("example", [*EXAMPLES, "groups.yaml", "auto-array.yaml"])
def test_directives_handed_to_the_backend_are_the_written_scripts_own(example, monkeypatch):
    """submit hands the backend each job's #SBATCH block as read while checking the script it wrote (the pyslurm
    backend then needs no second read of the file): it must be what reading the file gives, option for option and
    in order (the last of a repeated option wins)."""
    monkeypatch.chdir(REPO)
    plan = compile_file(f"examples/{example}")
    handed: dict = {}
    scripts = submission_scripts(plan, SUBMISSIONS[0], handed)
    assert set(handed) == {job.name for job in plan.submissions()}
    for name, directives in handed.items():
        read = read_directives(scripts[name], f"{name}.sbatch", owned_policy=False)
        assert read.problems == []
        assert [(d.name, d.value) for d in directives] == [(d.name, d.value) for d in read.directives], name


@pytest.mark.parametrize("example", EXAMPLES)
def test_compiled_script_block_is_the_jobs_options(example, monkeypatch):
    monkeypatch.chdir(REPO)
    for job in compile_file(f"examples/{example}").jobs:
        assert block(job.script) == dict(render.sbatch_options(job)), job.name
        assert block(job.script)["job-name"] == job.name  # submittable by hand under its allocation's name


def test_binding_keeps_the_body_and_only_rewrites_the_block(monkeypatch):
    monkeypatch.chdir(REPO)
    for job in compile_file("examples/porting/workflow.yaml").jobs:
        bound = render.bind_script(job, SUBMISSIONS[0])
        head, sep, rest = bound.partition("\n#\n# slurmdag workflow:")
        # everything below the block, the script's own (ignored) #SBATCH lines included, is kept byte for byte
        assert sep and job.script.endswith(sep + rest)
        assert head.startswith(job.script.split("\n", 1)[0] + "\n#SBATCH ")  # its own #! line, then the block
        again = render.with_directives(bound, render.sbatch_options(job, SUBMISSIONS[0]))
        assert again == bound  # binding twice changes nothing


def test_a_throttle_added_by_lanes_is_in_the_script_too():
    plan = compile_text(
        "name: w\nallocations:\n  - {name: a, entrypoint: x, tasks: 10}\n  - {name: b, entrypoint: x}\n"
    )
    laned = apply_max_concurrent(plan, 3)
    job = laned.job("a")
    assert job.array == "0-9%3" and block(job.script)["array"] == "0-9%3"


def test_walltime_is_written_once_in_slurms_form():
    job = compile_text("name: w\nallocations:\n  - {name: a, entrypoint: x, walltime: 1d12h}\n").job("a")
    assert job.walltime == 129600 and "time" not in job.options
    assert dict(render.sbatch_options(job))["time"] == "1-12:00:00"
    assert "--time=1-12:00:00" in job_options(job, SUBMISSIONS[0], "afterok:1")
    assert block(render.bind_script(job, SUBMISSIONS[0]))["time"] == "1-12:00:00"


def test_join_jobs_and_the_gate_write_nothing():
    plan = compile_text(
        "name: w\nallocations:\n  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x}\n"
        "  - {name: c, entrypoint: x}\n  - {name: m, entrypoint: x, depends_on: [c], depends_on_any: [a, b]}\n"
    )
    join = plan.job("m+any")
    for submission in (None, *SUBMISSIONS):
        options = dict(render.sbatch_options(join, submission))
        assert (options["output"], options["error"]) == ("/dev/null", "/dev/null")
    gate = dict(gate_options(plan, SUBMISSIONS[0]))
    assert (gate["output"], gate["error"]) == ("/dev/null", "/dev/null")
