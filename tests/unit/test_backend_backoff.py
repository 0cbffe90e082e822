"""slurmctld's "slow down" (RPC rate limit, rl_enable): recognised by both backends, waited out for a bounded time
(`backends.backoff`), never a failure on the first answer. The behaviour against a real rate-limited slurmctld is
tests/integration/test_rate_limit_cluster.py; here the runner's contract with stand-in programs, and the retry loop
with a fake clock."""

from __future__ import annotations

import pytest

from slurmdag.backends import backoff, runner
from slurmdag.model.errors import RateLimitedError, SlurmCommandError, SlurmUnavailableError

# What sbatch prints when slurmctld drops the RPC (SLURMCTLD_COMMUNICATIONS_HARD_DROP, libslurm does not retry it).
HARD_DROP = "sbatch: error: Batch job submission failed: Rate limit exceeded, please retry later"


def test_a_rate_limit_answer_is_its_own_error_not_unreachable():
    err = runner.classify(["sbatch", "x.sh"], 1, "", HARD_DROP + "\n")
    assert isinstance(err, RateLimitedError) and not isinstance(err, SlurmUnavailableError)
    assert "slow down" in str(err) and "Rate limit exceeded" in str(err)


def test_a_timeout_is_never_taken_for_a_rate_limit():
    err = runner.classify(["squeue"], None, "", "squeue: RPC rate limited 3 time(s). Rate limit exceeded", 60.0)
    assert not isinstance(err, RateLimitedError)


def test_the_runner_sends_a_rate_limited_command_again_until_it_goes_through(tmp_path, monkeypatch):
    monkeypatch.setattr(backoff, "FIRST_PAUSE", 0.01)
    count = tmp_path / "count"
    script = (
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; "
        f'if [ "$n" -lt 2 ]; then echo "{HARD_DROP}" >&2; exit 1; fi; echo 4242'
    )
    proc = runner.run_slurm(["sh", "-c", script])
    assert proc.stdout.strip() == "4242"
    assert count.read_text().strip() == "3"  # two refusals, then the one that went through


def test_retry_pauses_grow_and_stop_at_the_bound():
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    def refused() -> str:
        raise RateLimitedError(["sbatch"], 1, "", HARD_DROP)

    with pytest.raises(RateLimitedError):
        backoff.retry(refused, wait=60, sleep=sleep, clock=lambda: now[0])
    assert pauses[:6] == [1, 2, 4, 8, 16, 16]
    assert sum(pauses) == pytest.approx(60)


def test_retry_leaves_every_other_error_alone():
    calls = []

    def refused() -> str:
        calls.append(1)
        raise SlurmCommandError(["sbatch"], 1, "", "sbatch: error: invalid partition specified: nope")

    with pytest.raises(SlurmCommandError):
        backoff.retry(refused, sleep=lambda s: pytest.fail("no pause for a refusal"))
    assert calls == [1]


@pytest.mark.parametrize("errno", [1804, 1805])
def test_the_pyslurm_backend_reads_slurmctlds_rate_limit_errnos_as_rate_limits(errno):
    from slurmdag.backends.pyslurm_backend import PyslurmBackend  # the module imports no pyslurm itself

    err = PyslurmBackend._error(None, ["sbatch", "--parsable", "x.sh"], errno, "Rate limit exceeded")  # type: ignore[arg-type]
    assert isinstance(err, RateLimitedError)
    other = PyslurmBackend._error(None, ["sbatch"], 2038, "Job dependency problem")  # type: ignore[arg-type]
    assert not isinstance(other, RateLimitedError)


def test_a_read_that_timed_out_on_its_socket_is_sent_again_a_few_times_and_a_write_never():
    said = "slurm_load_jobs error: Socket timed out on send/recv operation"
    pauses: list[float] = []

    def attempt(argv: list[str], calls: list[int]):
        def call() -> str:
            calls.append(1)
            raise runner.classify(argv, 1, "", said)

        return call

    reads: list[int] = []
    with pytest.raises(SlurmUnavailableError):
        backoff.retry(attempt(["squeue", "-j", "1"], reads), sleep=pauses.append)
    assert len(reads) == 1 + backoff.READ_TIMEOUT_TRIES and pauses == [1, 2, 4]

    writes: list[int] = []
    with pytest.raises(SlurmUnavailableError):
        backoff.retry(attempt(["scontrol", "release", "1"], writes), sleep=pauses.append)
    assert len(writes) == 1  # a release that may have happened is not sent twice


def test_only_reads_count_as_reads():
    assert backoff.is_read(["squeue", "-h"]) and backoff.is_read(["/usr/bin/sinfo"])
    assert backoff.is_read(["scontrol", "show", "config"])
    assert not backoff.is_read(["scontrol", "update", "JobId=1", "Dependency="])
    assert not backoff.is_read(["sbatch", "x.sh"]) and not backoff.is_read(["scancel", "1"])
