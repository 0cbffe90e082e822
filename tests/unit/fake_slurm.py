"""A fake Slurm at the command boundary: it stands in for `backends.runner.run_slurm` (the one function every Slurm
command goes through), records each argv, and answers from an in-memory job table in the formats Slurm 22.05
prints (tests/fixtures/slurm-output/), so the real CliBackend and its parsers run unchanged.

For the fault paths the cluster cannot produce on demand (an sbatch refused in the middle of a DAG, a submitter
that died); the cluster tests cover the same paths against real Slurm.

    fake = FakeSlurm()
    monkeypatch.setattr(runner, "run_slurm", fake)
    fake.refuse_sbatch(3)               # the third sbatch call fails like Slurm refusing it
    ... code under test ...
    fake.commands()                     # ["sbatch", "sbatch", "scontrol hold", "scancel", "squeue", ...]

Faults on demand (tests/unit/test_fault_paths.py): `busy` (a released job waits for CPUs, Reason=Resources),
`controller_down` / `accounting_down` (the clients' own messages when slurmctld / slurmdbd do not answer),
`on_sbatch` (a hook before each sbatch is answered: send a signal, fill the job table ...).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from slurmdag.backends import runner
from slurmdag.backends.cluster_parse import QUEUE_FORMAT
from slurmdag.backends.parse import SACCT_FIELDS, SQUEUE_FORMAT
from slurmdag.model.errors import SlurmCommandError

FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}
# What sbatch 22.05 prints when slurmctld holds MaxJobCount jobs, once its own 15 retries are over.
TABLE_FULL = (
    "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"
    "sbatch: error: Batch job submission failed: Resource temporarily unavailable\n"
)
REFUSAL = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"


RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "slurm-output"


def _recorded(name: str) -> str:
    return (RECORDED / name).read_text()


@dataclass
class FakeJob:
    job_id: str
    name: str
    state: str = "PENDING"
    held: bool = False
    dependency: str | None = None
    node_list: str | None = None
    exit_code: str = "0:0"
    waiting_for: str | None = None  # a released job that cannot start yet: "Resources", "Priority"
    end: str = "N/A"  # squeue's %e of a finished job: local time, "2026-12-01T13:19:21"

    @property
    def reason(self) -> str:
        if self.held:
            return "JobHeldUser"
        if self.state == "PENDING" and self.waiting_for:
            return self.waiting_for
        return "Dependency" if self.state == "PENDING" and self.dependency else "None"


@dataclass
class FakeSlurm:
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    next_id: int = 100
    _refuse_at: set[int] = field(default_factory=set)
    _sbatch_calls: int = 0
    busy: bool = False  # every CPU taken: what is released stays pending with Reason=Resources
    controller_down: bool = False
    accounting_down: bool = False
    on_sbatch: Callable[[list[str], int], None] | None = None  # (argv, 1-based sbatch number), before answering
    on_call: Callable[[list[str]], None] | None = None  # every call, before it is answered
    purged: set[str] = field(default_factory=set)  # finished jobs slurmctld no longer holds (accounting still does)
    config: dict[str, str] = field(default_factory=dict)  # `scontrol show config` values to answer instead
    table_full: int = 0  # the next N sbatch calls are told the job table is full (sbatch's answer after its retries)
    # nth sbatch call (1-based) -> whether its job exists: the sbatch process dies of SIGHUP (exit -1), before it ran
    # (False) or after slurmctld made the job (True)
    killed_sbatch: dict[int, bool] = field(default_factory=dict)

    # --- set-up ---

    def refuse_sbatch(self, *nth: int) -> None:
        """The nth sbatch call (1-based, the gate included) is refused by Slurm (exit 1, nothing created)."""
        self._refuse_at.update(nth)

    def fill_table(self, n: int, state: str = "COMPLETED", ended_ago: float = 0.0) -> list[str]:
        """n jobs of another user in slurmctld's table; finished ones ended `ended_ago` seconds ago."""
        end = (datetime.now() - timedelta(seconds=ended_ago)).strftime("%Y-%m-%dT%H:%M:%S")
        ids = [self.add(f"other-{self.next_id}", state) for _ in range(n)]
        for job_id in ids:
            self.jobs[job_id].end = end if state in FINISHED else "N/A"
        return ids

    def purge_finished(self) -> None:
        """slurmctld's purge pass: finished jobs leave the table (accounting keeps them)."""
        self.purged |= {k for k, j in self.jobs.items() if j.state in FINISHED and j.end != "N/A"}

    def add(self, name: str, state: str = "PENDING", held: bool = False, dependency: str | None = None) -> str:
        """A job already in Slurm (e.g. submitted by a process that then died); returns its id."""
        job_id = str(self.next_id)
        self.next_id += 1
        node = "node1" if state not in ("PENDING", "CANCELLED") else None
        self.jobs[job_id] = FakeJob(job_id, name, state, held, dependency, node)
        return job_id

    # --- what happened ---

    def commands(self) -> list[str]:
        """Each call as its program (and scontrol's verb): "sbatch", "scontrol hold", "scancel", "squeue", ..."""
        return [" ".join(argv[:2]) if argv[0] == "scontrol" else argv[0] for argv in self.calls]

    def ids_of(self, command: str) -> list[list[str]]:
        """The job ids each call of `command` ("scancel", "scontrol hold", ...) was given."""
        words = len(command.split())
        return [argv[words:] for name, argv in zip(self.commands(), self.calls, strict=True) if name == command]

    def states(self) -> dict[str, str]:
        return {j.name: j.state for j in self.jobs.values()}

    # --- the runner's signature ---

    def __call__(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float | None = None, env: object = None
    ) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        self.calls.append(args)
        if self.on_call is not None:
            self.on_call(args)
        handler = {
            "sbatch": self._sbatch,
            "scontrol": self._scontrol,
            "scancel": self._scancel,
            "squeue": self._squeue,
            "sacct": self._sacct,
            "sacctmgr": self._sacctmgr,
        }.get(args[0])
        if handler is None:
            raise AssertionError(f"the fake Slurm does not know {args[0]!r}")
        # What the 22.05 clients print when the daemon they talk to is stopped (recorded on the test cluster)
        if self.accounting_down and args[0] == "sacct":
            raise runner.classify(args, 1, "", "sacct: error: Problem talking to the database: Connection refused\n")
        if self.controller_down and args[0] != "sacct":
            raise runner.classify(
                args, 1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
            )
        return subprocess.CompletedProcess(args, 0, handler(args), "")

    def _sbatch(self, args: list[str]) -> str:
        if args[1:] == ["--help"]:
            return _recorded("sbatch-help.txt")
        self._sbatch_calls += 1
        if self.on_sbatch is not None:
            self.on_sbatch(args, self._sbatch_calls)
        if self.table_full > 0:
            self.table_full -= 1
            raise runner.classify(args, 1, "", TABLE_FULL)
        if self._sbatch_calls in self._refuse_at:
            raise SlurmCommandError(args, 1, "", REFUSAL)
        opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        killed = self.killed_sbatch.get(self._sbatch_calls)
        if killed is False:
            raise runner.classify(args, -1, "", "")
        job_id = str(self.next_id)
        self.next_id += 1
        self.jobs[job_id] = FakeJob(job_id, opts["job-name"], held="--hold" in args, dependency=opts.get("dependency"))
        if killed:
            raise runner.classify(args, -1, "", "")
        return f"{job_id}\n"

    def _scontrol(self, args: list[str]) -> str:
        verb, ids = args[1], args[2:]
        if verb == "show":  # what pre-flight reads: the test cluster's own answers
            text = _recorded(f"scontrol-show-{ids[0]}.txt")
            for key, value in self.config.items():
                text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
            return text
        if verb in ("hold", "release"):
            for job_id in ids:
                job = self.jobs[job_id]
                if verb == "hold" and job.state != "PENDING":
                    raise SlurmCommandError(args, 1, "", f"Job {job_id} is no longer pending")
                job.held = verb == "hold"
                if verb == "release" and self.busy:
                    job.waiting_for = "Resources"
            return ""
        raise AssertionError(f"the fake Slurm does not know scontrol {verb}")

    def _scancel(self, args: list[str]) -> str:
        for job_id in args[1:]:
            job = self.jobs.get(job_id)
            if job is not None and job.state not in FINISHED:
                job.state = "CANCELLED"
        return ""  # like scancel: exit 0 whatever happened (slurm-facts §2 #31)

    def _selected(self, args: list[str], held_by_slurmctld: bool = False) -> list[FakeJob]:
        jobs = {k: j for k, j in self.jobs.items() if not (held_by_slurmctld and k in self.purged)}
        if "-j" not in args:
            return list(jobs.values())
        wanted = args[args.index("-j") + 1].split(",")
        return [jobs[j] for j in wanted if j in jobs]

    def _sacctmgr(self, args: list[str]) -> str:
        if "user" in args and "format=DefaultAccount" in args:
            return "root\n"
        if "assoc" in args:
            return "root||||normal\n"
        return "normal||\n"

    def _squeue(self, args: list[str]) -> str:
        fmt = args[args.index("-o") + 1]
        if fmt == QUEUE_FORMAT:  # pre-flight's read of every job slurmctld holds
            return "".join(
                f"{j.job_id}|normal|root|root|{j.state}|{j.end}\n" for k, j in self.jobs.items() if k not in self.purged
            )
        jobs = self._selected(args, held_by_slurmctld=True)
        if "-j" in args and not jobs:
            raise SlurmCommandError(args, 1, "", "slurm_load_jobs error: Invalid job id specified")
        assert fmt == SQUEUE_FORMAT, f"the fake answers slurmdag's squeue format only, not {fmt!r}"
        return "".join(
            f"{j.job_id}|{j.job_id}|{j.state}|{j.reason}|0:00|N/A|N/A|{j.node_list or ''}|{j.name}\n" for j in jobs
        )

    def _sacct(self, args: list[str]) -> str:
        assert args[args.index("-o") + 1] == SACCT_FIELDS
        return "".join(
            f"{j.job_id}|{j.job_id}|{j.state}|{j.exit_code}|00:00:00|None|None|"
            f"{j.node_list or 'None assigned'}|{j.reason}|{j.name}\n"
            for j in self._selected(args)
        )
