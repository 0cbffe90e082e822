"""The one command function: argv lists, typed errors carrying argv/exit code/output, unavailable-Slurm diagnosis.

Uses ordinary programs (sh) in place of Slurm clients: what is under test is the runner's contract, not Slurm.
"""

from __future__ import annotations

import pytest

from slurmdag.backends import runner
from slurmdag.model.errors import SlurmCommandError, SlurmUnavailableError


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
