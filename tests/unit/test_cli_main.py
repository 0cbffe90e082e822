"""The entry point's exit-code contract: 0 success, 1 runtime failure, 2 bad input or usage; never a traceback."""

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slurmdag", *args], capture_output=True, text=True, timeout=60)


def test_version_exits_0():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("slurmdag ")


@pytest.mark.parametrize(
    "args, needle",
    [
        (("no-such-command",), "No such command"),
        (("validate",), "Missing argument"),
        (("validate", "/nonexistent/workflow.yaml"), "/nonexistent/workflow.yaml"),
        (("status", "not-a-dag-id"), "not-a-dag-id"),
    ],
)
def test_bad_usage_exits_2_without_traceback(args, needle, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "slurmdag", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SLURMDAG_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_typer_exit_code_is_kept(monkeypatch):
    """A command that ends with typer.Exit(n) must make the process exit n (not 0)."""
    code = "import typer, slurmdag.cli as c\n@c.app.command('boom')\ndef boom():\n    raise typer.Exit(3)\nc.main()\n"
    r = subprocess.run([sys.executable, "-c", code, "boom"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
