"""Choosing the backend: --backend, $SLURMDAG_BACKEND, the site file's `backend:`, auto; an explicit pyslurm that
cannot work is one error (exit 1) and the interpreter survives a pyslurm that dies on import (the probe runs in a
child process). Run through `python -m slurmdag`, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurmdag.model.errors import InputError
from slurmdag.policy.limits import parse_site, parse_site_backend

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SLURMDAG_BACKEND", "SLURMDAG_SITE_POLICY")}
    base.update({"SLURMDAG_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)})
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", *args], capture_output=True, text=True, timeout=120, env=base
    )


# A Slurm config that does not exist: libslurm (so `import pyslurm`) ends the process reading it (after retrying
# for 60 s): slurmdag says so at once, without a probe.
BROKEN = {"SLURM_CONF": "/nonexistent/slurm.conf"}
# A config libslurm cannot parse: `import pyslurm` kills the process at once.
GARBLED = "ThisIsNotAKey=1\n"


def test_pyslurm_dying_on_import_kills_only_the_probe(tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(GARBLED)
    r = run(tmp_path, "--backend", "pyslurm", "list", SLURM_CONF=str(conf))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("the pyslurm backend (--backend) cannot work here: ")
    # Where pyslurm is installed its import dies on the config; elsewhere it is simply not installed.
    assert "killed the probe process" in first or "not installed" in first, r.stderr


def test_unknown_backend_is_a_usage_error(tmp_path):
    r = run(tmp_path, "--backend", "slurmrestd", "list")
    assert r.returncode == 2
    assert "unknown backend 'slurmrestd'" in r.stderr and "auto, cli, pyslurm" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_backend_from_the_environment_names_it(tmp_path):
    r = run(tmp_path, "list", SLURMDAG_BACKEND="fast")
    assert r.returncode == 2 and "$SLURMDAG_BACKEND: unknown backend 'fast'" in r.stderr


def test_explicit_pyslurm_that_cannot_work_is_one_error_not_a_dead_interpreter(tmp_path):
    r = run(tmp_path, "--backend", "pyslurm", "list", **BROKEN)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("the pyslurm backend (--backend) cannot work here: "), r.stderr
    assert "SLURM_CONF=/nonexistent/slurm.conf: no such file" in lines[0], r.stderr
    assert "hint: use --backend cli" in r.stderr and "Traceback" not in r.stderr


def test_auto_falls_back_to_the_cli_and_says_why_under_v(tmp_path):
    r = run(tmp_path, "-v", "list", **BROKEN)
    assert r.returncode == 0, r.stderr
    assert "slurmdag: backend cli (auto, default): " in r.stderr
    quiet = run(tmp_path, "list", **BROKEN)
    assert quiet.returncode == 0 and "backend" not in quiet.stderr  # said only under -v


@pytest.mark.skipif(os.getuid() != 0, reason="SLURMDAG_SITE_POLICY is honoured for root only")
def test_site_file_backend_applies_after_flag_and_environment(tmp_path):
    site = tmp_path / "policy.yaml"
    site.write_text("max_allocations: 50\nbackend: cli\n")
    r = run(tmp_path, "-v", "list", SLURMDAG_SITE_POLICY=str(site), **BROKEN)
    assert r.returncode == 0 and f"backend cli (site config {site})" in r.stderr, r.stderr
    r = run(tmp_path, "-v", "list", SLURMDAG_SITE_POLICY=str(site), SLURMDAG_BACKEND="cli", **BROKEN)
    assert "backend cli ($SLURMDAG_BACKEND)" in r.stderr
    r = run(tmp_path, "-v", "--backend", "cli", "list", SLURMDAG_SITE_POLICY=str(site), SLURMDAG_BACKEND="pyslurm")
    assert "backend cli (--backend)" in r.stderr


def test_site_file_backend_key():
    assert parse_site_backend("backend: pyslurm\n", "site.yaml") == "pyslurm"
    assert parse_site_backend("max_allocations: 5\n", "site.yaml") is None
    assert parse_site("max_allocations: 5\nbackend: auto\n", "site.yaml").values["max_allocations"][0] == 5
    with pytest.raises(InputError) as err:
        parse_site_backend("max_allocations: 5\nbackend: fastest\n", "site.yaml")
    assert str(err.value).startswith("site.yaml:2:10: `backend` must be one of auto, cli, pyslurm")


def test_the_probe_reads_pre_flights_config_names_from_pyslurms_new_api_too():
    """pyslurm 25.11 has only `slurmctld.Config` (no old `pyslurm.config`): the probe still hands pre-flight the
    `scontrol show config` names it reads (MaxArraySize, MaxJobCount, MinJobAge, PropagateResourceLimits...)."""
    from types import SimpleNamespace

    from slurmdag.backends.pyslurm_probe import controller_config

    loaded = SimpleNamespace(
        version="25.11.7",
        max_array_size=1001,
        max_job_count=10000,
        min_job_age=300,
        propagate_resource_limits=["ALL"],
        propagate_resource_limits_except=[],
    )
    fake = SimpleNamespace(slurmctld=SimpleNamespace(Config=SimpleNamespace(load=lambda: loaded)))
    assert controller_config(fake) == {
        "SLURM_VERSION": "25.11.7",
        "MaxArraySize": 1001,
        "MaxJobCount": 10000,
        "MinJobAge": 300,
        "PropagateResourceLimits": "ALL",
        "PropagateResourceLimitsExcept": "",
    }


# What the probe printed on 22.05 with slurmctld stopped (pyslurm 22.5's old API: ValueError(message, errno)).
_CONTROLLER_DOWN_PROBE = (
    '{"pyslurm": "22.5.3", "path": "/x/pyslurm/__init__.py", "built_for": "22.5.8", "cluster_error": '
    '"ValueError: (\'Unable to contact slurm controller (connect failure)\', 1800)", "cluster_errno": 1800, '
    '"cluster_message": "Unable to contact slurm controller (connect failure)"}'
)


def test_a_controller_that_does_not_answer_is_said_as_such_through_an_explicit_pyslurm(monkeypatch):
    from slurmdag.backends import choice, runner
    from slurmdag.model.errors import SlurmUnavailableError

    result = choice.judge(0, _CONTROLLER_DOWN_PROBE + "\n", "")
    assert not result.usable and result.unreachable == (1800, "Unable to contact slurm controller (connect failure)")
    monkeypatch.setattr(choice, "pyslurm_installed", lambda: True)
    monkeypatch.setattr(choice, "probe", lambda: result)
    with pytest.raises(SlurmUnavailableError) as caught:
        choice.choose("pyslurm", "--backend")
    message = str(caught.value)
    assert message.startswith(runner.CONTROLLER_DOWN) and "\n" not in message, message
    assert "errno 1800" in message
    # auto: the CLI is taken, and says the same itself when it runs its first command
    assert choice.choose("auto", "default").name == "cli"


def test_a_probe_that_fails_otherwise_is_not_called_an_unreachable_controller():
    from slurmdag.backends import choice

    other = _CONTROLLER_DOWN_PROBE.replace("1800", "2002").replace("Unable to contact slurm controller", "Denied")
    assert choice.judge(0, other, "").unreachable is None
