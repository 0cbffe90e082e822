"""`retries: N`: the rendered script retries the entrypoint inside the job; the attempt notes in the job's comment
parse back (retry_progress.py). The script really retries: it is run here with bash."""

from __future__ import annotations

import subprocess

from slurmdag.backends.parse import parse_comment_rows
from slurmdag.compiler.compile import compile_text
from slurmdag.runs.retry_progress import RetryAttempt, parse_comment

WF = """
name: r
allocations:
  - name: flaky
    retries: 2
    entrypoint: |
      echo run >> "$RUNS"
      [ "$(wc -l < "$RUNS")" -ge {need} ]
      echo after-check >> "$RUNS"
"""


def run_script(tmp_path, need: int) -> tuple[int, list[str], str]:
    plan = compile_text(WF.format(need=need))
    script = tmp_path / "flaky.sbatch"
    script.write_text(plan.job("flaky").script)
    runs = tmp_path / "runs"
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNS": str(runs),
        "SLURM_JOB_NAME": "sd-0123abcd-flaky",
        "SLURM_JOB_ID": "1",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    return proc.returncode, runs.read_text().splitlines(), proc.stderr


def test_fails_twice_then_succeeds_within_one_job(tmp_path):
    rc, lines, err = run_script(tmp_path, 3)
    assert rc == 0
    assert lines == ["run", "run", "run", "after-check"]  # set -e stops each failing attempt at the failed line
    assert err.count("retrying") == 2


def test_gives_up_after_retries_with_the_last_exit_code(tmp_path):
    rc, lines, err = run_script(tmp_path, 5)
    assert rc == 1 and lines == ["run"] * 3
    assert "attempt 3 of 3 failed (exit 1); no retries left" in err


def test_without_retries_there_is_no_loop():
    plan = compile_text("name: n\nallocations:\n  - {name: x, entrypoint: 'true'}\n")
    assert "_slurmdag_try" not in plan.job("x").script


def test_attempt_comment_parses():
    assert parse_comment("slurmdag:0123abcd:flaky:attempt=3/3:exit=0") == RetryAttempt(3, 3, 0)
    assert parse_comment("slurmdag:0123abcd:flaky") is None
    rows = parse_comment_rows("12|slurmdag:0123abcd:x:attempt=2/4:exit=7\n13|\n14|a|b\n")
    assert rows == {"12": "slurmdag:0123abcd:x:attempt=2/4:exit=7", "14": "a|b"}
    assert parse_comment(rows["12"]) == RetryAttempt(2, 4, 7)
