"""The one command function: argv lists, typed errors carrying argv/exit code/output, unavailable-Slurm diagnosis.

Uses ordinary programs (sh) in place of Slurm clients: what is under test is the runner's contract, not Slurm.
"""

from __future__ import annotations

import pytest

from slurmdag.backends import runner
from slurmdag.model.errors import (
    KEY_LINE_MAX,
    AccountingUnavailableError,
    JobTableFullError,
    SlurmCommandError,
    SlurmUnavailableError,
    key_line,
)


def test_success_returns_output_and_passes_stdin_and_env():
    proc = runner.run_slurm(["sh", "-c", 'cat; printf "%s" "$SD_X"'], stdin="in-", env={"SD_X": "env"})
    assert proc.stdout == "in-env"


def test_failure_carries_argv_exit_code_stdout_and_stderr():
    argv = ["sh", "-c", "echo out; echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1"]
    with pytest.raises(SlurmCommandError) as ex:
        runner.run_slurm(argv)
    err = ex.value
    assert not isinstance(err, SlurmUnavailableError)
    assert err.argv == argv and err.returncode == 1
    assert err.stdout == "out\n" and "invalid partition specified: nope" in err.stderr
    assert "invalid partition specified: nope" in str(err)


def test_arguments_are_never_shell_interpreted():
    proc = runner.run_slurm(["printf", "%s", "$(echo no); rm -rf /"])
    assert proc.stdout == "$(echo no); rm -rf /"


@pytest.mark.parametrize(
    "message",
    [
        "slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
        "sbatch: fatal: Could not establish a configuration source",
        "sacct: error: Problem talking to the database: Connection refused",
    ],
)
def test_unreachable_controller_is_unavailable(message):
    with pytest.raises(SlurmUnavailableError) as ex:
        runner.run_slurm(["sh", "-c", f"echo '{message}' >&2; exit 1"])
    assert ex.value.returncode == 1


def test_missing_binary_is_unavailable():
    with pytest.raises(SlurmUnavailableError) as ex:
        runner.run_slurm(["slurmdag-no-such-binary", "-h"])
    assert ex.value.returncode is None and "not found" in str(ex.value)


def test_timeout_is_unavailable_and_names_the_limit():
    with pytest.raises(SlurmUnavailableError) as ex:
        runner.run_slurm(["sleep", "5"], timeout=0.2)
    assert "0.2" in str(ex.value)


def test_observer_sees_every_command(monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "command_observer", seen.append)
    runner.run_slurm(["true"])
    assert seen == [["true"]]


# --- the one-line diagnosis of a Slurm that is not there (issue 17, defects 6 and 8) ---

# What the 22.05 clients print, recorded on the test cluster (config missing, slurmctld stopped, slurmdbd stopped,
# job table full).
UNCONFIGURED = (
    "squeue: error: s_p_parse_file: cannot stat file /etc/slurm/slurm.conf: No such file or directory, "
    "retrying in 1sec up to 60sec\nsqueue: error: ClusterName needs to be specified\n"
    "squeue: fatal: Unable to process configuration file\n"
)
NO_CONTROLLER = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
NO_DBD = (
    "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to "
    "host:localhost:6819: Connection refused\nsacct: error: Sending PersistInit msg: Connection refused\n"
    "sacct: error: Problem talking to the database: Connection refused\n"
)
TABLE_FULL = (
    "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"
    "sbatch: error: Batch job submission failed: Resource temporarily unavailable\n"
)


def _fail_with(stderr: str, tmp_path, name: str = "squeue") -> list[str]:
    (tmp_path / "err.txt").write_text(stderr)
    return ["sh", "-c", f"cat {tmp_path / 'err.txt'} >&2; exit 1", name]


@pytest.mark.parametrize(
    "stderr, kind, summary",
    [
        (UNCONFIGURED, SlurmUnavailableError, "Slurm is not configured on this machine"),
        (NO_CONTROLLER, SlurmUnavailableError, "the Slurm controller (slurmctld) is not answering"),
        (NO_DBD, AccountingUnavailableError, "Slurm's accounting daemon (slurmdbd) is not answering"),
        (TABLE_FULL, JobTableFullError, "Slurm's job table is full (MaxJobCount reached)"),
    ],
)
def test_each_absent_slurm_is_named_in_one_line(stderr, kind, summary, tmp_path):
    with pytest.raises(SlurmCommandError) as ex:
        runner.run_slurm(_fail_with(stderr, tmp_path))
    err = ex.value
    assert type(err) is kind
    message = str(err)
    assert message.startswith(summary) and "\n" not in message, message
    assert len(message) < 400
    assert err.stderr == stderr  # the whole story is kept for whoever wants it


def test_a_full_job_table_is_not_unreachable(tmp_path):
    with pytest.raises(JobTableFullError) as ex:
        runner.run_slurm(_fail_with(TABLE_FULL, tmp_path))
    assert not isinstance(ex.value, SlurmUnavailableError)


def test_a_timeout_inside_sbatchs_retry_loop_is_a_full_table(tmp_path):
    """sbatch still sleeping in its own retry loop when the runner's timeout hits: what it printed says why."""
    argv = [
        "sh",
        "-c",
        "echo 'sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying' >&2; sleep 5",
    ]
    with pytest.raises(JobTableFullError):
        runner.run_slurm(argv, timeout=0.5)


def test_a_non_executable_slurm_command_on_path_is_one_clean_line(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "squeue").write_text("#!/bin/sh\necho never\n")
    (fake / "squeue").chmod(0o644)  # on PATH, not executable: PermissionError from exec
    monkeypatch.setenv("PATH", str(fake))  # alone: exec would go on to a real squeue later on PATH
    with pytest.raises(SlurmUnavailableError) as ex:
        runner.run_slurm(["squeue", "-h"])
    message = str(ex.value)
    assert "\n" not in message and "cannot be run" in message and "Permission denied" in message, message
    assert str(fake / "squeue") in message


def test_a_missing_slurm_conf_is_said_at_once(tmp_path, monkeypatch):
    """The clients retry for 60 s when SLURM_CONF names no file; the runner says so without starting them."""
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "nope.conf"))
    seen = []
    monkeypatch.setattr(runner.subprocess, "run", lambda *a, **k: seen.append(a) or pytest.fail("ran the client"))
    with pytest.raises(SlurmUnavailableError) as ex:
        runner.run_slurm(["sbatch", "--parsable", "x.sbatch"])
    assert str(ex.value).startswith("Slurm is not configured on this machine"), str(ex.value)
    assert "nope.conf" in str(ex.value) and not seen


def test_key_line_is_bounded():
    assert len(key_line("sbatch: error: " + "x" * 100_000)) == KEY_LINE_MAX
    assert key_line("a\nsqueue: error: first\nsqueue: fatal: the reason\n") == "the reason"
