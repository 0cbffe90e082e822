"""Options newer than the 22.05 table (or a site plugin's) in a `script:`: passed on, never refused by the table
alone; the cluster's own `sbatch --help` decides (validate here; pre-flight at submit, tested on the cluster)."""

from __future__ import annotations

import os
import subprocess
import sys

from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.script_directives import read_directives
from tests.unit.conftest import REPO

SCRIPT = "#!/bin/bash\n#SBATCH --tres-per-task cpu:2\n#SBATCH --oom-kill-step\n#SBATCH --ntasks=2\necho hi\n"


def test_newer_options_are_read_with_their_arguments_and_passed_on():
    d = read_directives(SCRIPT, "job.sh")
    assert d.problems == [] and d.notes == []
    assert d.options() == {"ntasks": "2", "tres-per-task": "cpu:2", "oom-kill-step": None}


def test_they_reach_the_rendered_script(tmp_path):
    (tmp_path / "job.sh").write_text(SCRIPT)
    job = compile_text("name: x\nallocations:\n  - {name: a, script: job.sh}\n", "wf.yaml", base_dir=tmp_path).job("a")
    assert job.options["tres-per-task"] == "cpu:2" and "oom-kill-step" in job.options
    assert "#SBATCH --tres-per-task=cpu:2\n" in job.script and "#SBATCH --oom-kill-step\n" in job.script


def test_an_unknown_option_is_a_warning_and_a_near_miss_an_error():
    d = read_directives("#!/bin/bash\n#SBATCH --frobnicate=3\n#SBATCH --partiton=debug\ntrue\n", "job.sh")
    assert [(p.line, p.message) for p in d.notes] == [
        (2, "unknown sbatch option --frobnicate (not in sbatch 22.05's options)")
    ]
    assert [(p.line, p.message, p.hint) for p in d.problems] == [
        (3, "unknown sbatch option --partiton", "did you mean --partition?")
    ]
    assert d.options()["frobnicate"] == "3"


def test_validate_without_sbatch_accepts_them_and_says_they_were_not_checked(tmp_path):
    (tmp_path / "job.sh").write_text(SCRIPT)
    (tmp_path / "wf.yaml").write_text("name: x\nallocations:\n  - {name: a, script: job.sh}\n")
    env = {"PATH": os.path.dirname(sys.executable), "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "slurmdag", "validate", "wf.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "note: --oom-kill-step, --tres-per-task not checked: no sbatch here" in done.stderr
