"""The pyslurm backend's pure parts: sbatch options -> JobSubmitDescription fields (or a reason to use sbatch), the
environment sbatch would send, resource-limit propagation, and what a probe's output means. No pyslurm needed."""

from __future__ import annotations

import pytest

from slurmdag.backends import choice
from slurmdag.backends.pyslurm_options import (
    RLIMIT_NAMES,
    Submitter,
    propagated_rlimits,
    sbatch_environment,
    translate,
)
from slurmdag.compiler.script_directives import read_directives

WHO = Submitter("/home/u/run", "login1", 0o022, 0, (("NOFILE", "1024"), ("STACK", "8388608")))
SCRIPT = "/home/u/.slurmdag/d/scripts/a.sbatch"


def fields(options: list[str], environ: dict[str, str] | None = None, script_text: str = "#!/bin/sh\ntrue\n"):
    directives = read_directives(script_text, SCRIPT).directives
    return translate(SCRIPT, options, directives, environ or {}, WHO)


def test_slurmdag_job_options_translate():
    got = fields(
        [
            "--cpus-per-task=2",
            "--mem=4G",
            "--time=1:30:00",
            "--partition=debug",
            "--output=/tmp/o-%A_%a.out",
            "--job-name=sd-abcd1234-a",
            "--comment=slurmdag:abcd1234:a",
            "--kill-on-invalid-dep=yes",
            "--dependency=afterok:12:13",
            "--array=0-9%2",
        ]
    )
    assert got.sbatch_reason is None
    f = got.fields
    assert f["cpus_per_task"] == 2
    assert f["memory_per_node"] == 4096
    assert f["time_limit"] == "1:30:00"
    assert f["partitions"] == "debug"
    assert f["standard_output"] == "/tmp/o-%A_%a.out"
    assert f["name"] == "sd-abcd1234-a"
    assert f["comment"] == "slurmdag:abcd1234:a"
    assert f["kill_on_invalid_dependency"] is True
    assert f["dependencies"] == "afterok:12:13"  # a string: pyslurm mutates a dict
    assert f["array"] == "0-9%2"
    assert f["script"] == SCRIPT and f["script_args"] == [SCRIPT]
    assert f["working_directory"] == WHO.cwd


def test_gate_is_submitted_held_with_priority_zero():
    got = fields(["--hold", "--time=1", "--ntasks=1", "--nodes=1", "--output=/dev/null"])
    assert got.fields["priority"] == 0
    assert got.fields["time_limit"] == 1  # minutes as an int: pyslurm would pass a digit string uncounted


def test_order_script_then_environment_then_command_line():
    script = "#!/bin/sh\n#SBATCH --partition=fromscript --account=acct --time=5\ntrue\n"
    got = fields(["--time=10"], {"SBATCH_PARTITION": "fromenv"}, script)
    assert got.fields["partitions"] == "fromenv"
    assert got.fields["account"] == "acct"
    assert got.fields["time_limit"] == 10


def test_requeue_flags_last_one_wins():
    script = "#!/bin/sh\n#SBATCH --no-requeue\ntrue\n"
    assert fields([], {}, script).fields["is_requeueable"] is False
    assert fields(["--requeue"], {}, script).fields["is_requeueable"] is True
    assert "is_requeueable" not in fields([]).fields


@pytest.mark.parametrize(
    "options, environ, why",
    [
        (["--gres=gpu:1"], {}, "--gres"),
        (["--signal=B:USR1@60"], {}, "--signal"),
        (["--mem=0"], {}, "--mem"),
        (["--mem=1500K"], {}, "--mem"),
        (["--time=UNLIMITED"], {}, "--time"),
        (["--export=NONE"], {}, "--export"),
        (["--ntasks=8"], {}, "--ntasks without --nodes"),
        (["--exclusive=topo"], {}, "--exclusive"),
        (["--kill-on-invalid-dep=maybe"], {}, "--kill-on-invalid-dep"),
        (["--kill-on-invalid-dep=no"], {}, "--kill-on-invalid-dep"),  # the reconciler cascade: a flag pyslurm lacks
        (["--time=10"], {"SBATCH_GPUS": "2"}, "SBATCH_GPUS"),
        (["--frobnicate=1"], {}, "frobnicate"),
    ],
)
def test_what_pyslurm_cannot_do_exactly_goes_to_sbatch(options, environ, why):
    got = fields(options, environ)
    assert got.fields == {}
    assert got.sbatch_reason is not None and why in got.sbatch_reason


def test_ntasks_with_nodes_translates():
    got = fields(["--ntasks=8", "--nodes=2-3"])
    assert got.sbatch_reason is None
    assert got.fields["ntasks"] == 8 and got.fields["nodes"] == "2-3"


def test_relative_chdir_is_made_absolute_like_sbatch():
    assert fields(["--chdir=sub"]).fields["working_directory"] == "/home/u/run/sub"
    assert fields(["--chdir=/abs"]).fields["working_directory"] == "/abs"


def test_environment_is_the_callers_plus_what_sbatch_adds():
    env = sbatch_environment({"HOME": "/home/u", "SLURM_CONF": "/etc/slurm.conf"}, WHO, "sd-x-a")
    assert env["HOME"] == "/home/u" and env["SLURM_CONF"] == "/etc/slurm.conf"
    assert env["SLURM_JOB_NAME"] == "sd-x-a"
    assert env["SLURM_SUBMIT_DIR"] == "/home/u/run"
    assert env["SLURM_SUBMIT_HOST"] == "login1"
    assert env["SLURM_UMASK"] == "0022"
    assert env["SLURM_PRIO_PROCESS"] == "0"
    assert env["SLURM_RLIMIT_NOFILE"] == "1024" and env["SLURM_RLIMIT_STACK"] == "8388608"


def test_default_job_name_is_the_script_name():
    got = fields(["--time=1"])
    assert got.fields["name"] == "a.sbatch"
    assert got.fields["environment"]["SLURM_JOB_NAME"] == "a.sbatch"


def test_rlimit_propagation_follows_the_cluster_setting():
    soft = {name: 100 + i for i, name in enumerate(RLIMIT_NAMES)}
    soft["CPU"] = -1
    every = propagated_rlimits("ALL", "(null)", soft)
    assert [n for n, _ in every] == list(RLIMIT_NAMES)
    assert dict(every)["CPU"] == str(2**64 - 1)  # RLIM_INFINITY as sbatch prints it
    assert propagated_rlimits("NONE", None, soft) == ()
    assert [n for n, _ in propagated_rlimits("NOFILE,CORE", None, soft)] == ["CORE", "NOFILE"]
    assert [n for n, _ in propagated_rlimits("ALL", "NOFILE", soft)] == [n for n in RLIMIT_NAMES if n != "NOFILE"]
    with pytest.raises(ValueError):
        propagated_rlimits("NOFILE,BOGUS", None, soft)


# --- the probe's verdict ---


def test_probe_missing_pyslurm():
    r = choice.judge(0, '{"missing": "No module named \'pyslurm\'"}\n', "")
    assert not r.usable and "not installed" in r.reason


def test_probe_killed_by_import_names_slurms_complaint():
    r = choice.judge(1, "", "fatal: Could not establish a configuration source\n")
    assert not r.usable
    assert "killed" in r.reason and "configuration source" in r.reason
    assert "signal 11" in choice.judge(-11, "", "").reason
    assert "did not answer within" in choice.judge(None, "", "retrying in 1sec").reason


def test_probe_version_match_and_mismatch():
    ok = choice.judge(0, '{"pyslurm": "22.5.3", "built_for": "22.5.8", "cluster": "22.05.8"}', "")
    assert ok.usable and "22.5.3" in ok.reason and "22.05.8" in ok.reason
    bad = choice.judge(0, '{"pyslurm": "25.11.2", "cluster": "22.05.8"}', "")
    assert not bad.usable and "25.11" in bad.reason and "22.05.8" in bad.reason
    down = choice.judge(0, '{"pyslurm": "22.5.3", "cluster_error": "RPCError: Unable to contact slurm controller"}', "")
    assert not down.usable and "Unable to contact" in down.reason


def test_release_numbers():
    assert choice.release("22.05.8") == choice.release("22.5.3") == (22, 5)
    assert choice.release("25.11.2") == (25, 11)
    assert choice.release("garbage") is None


def test_the_environment_follows_the_clusters_sbatch_from_24_11_on():
    """sbatch 24.11 (measured against 22.05's): no SLURM_JOB_NAME, no SLURM_OPEN_MODE, the MPI external-launcher
    variables; and --cpus-per-task goes through sbatch (it also sends TresPerTask=cpu=N, which pyslurm cannot)."""
    import dataclasses

    newer = dataclasses.replace(WHO, newer_sbatch=True)
    opts = ["--job-name=x", "--open-mode=append"]
    old_env = translate(SCRIPT, opts, [], {}, WHO).fields["environment"]
    new_env = translate(SCRIPT, opts, [], {"HYDRA_BOOTSTRAP": "ssh"}, newer).fields["environment"]
    assert old_env["SLURM_JOB_NAME"] == "x" and old_env["SLURM_OPEN_MODE"] == "a"
    assert "SLURM_JOB_NAME" not in new_env and "SLURM_OPEN_MODE" not in new_env
    assert new_env["OMPI_MCA_plm_slurm_args"] == "--external-launcher"
    assert new_env["I_MPI_HYDRA_BOOTSTRAP"] == "slurm" and new_env["HYDRA_BOOTSTRAP"] == "ssh"  # the user's kept
    assert "HYDRA_LAUNCHER_EXTRA_ARGS" not in new_env
    assert translate(SCRIPT, ["--cpus-per-task=2"], [], {}, newer).sbatch_reason
    assert not translate(SCRIPT, ["--cpus-per-task=2"], [], {}, WHO).sbatch_reason
