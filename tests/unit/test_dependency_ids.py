"""docs/compatibility.md rows 1-2: Slurm 22.05 silently drops a dependency on a job id slurmctld does not know (never
existed, or purged after MinJobAge) and runs the job at once; 24.11+ refuses `afterok` on such an id at submit and
drops `afterany`. slurmdag is safe on both only because no `--dependency` it renders ever names a job id that was not
handed out by Slurm earlier in the same submission (the held gate, or a job submitted just before). This checks that
property on every sbatch call of `submit`, `resume` and `redo`, over random DAGs and the shipped examples, with random
outcomes of the earlier attempt: the resume's jobs must never name an id of an earlier attempt."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmdag.backends.base import Backend, JobInfo
from slurmdag.compiler.compile import compile_file, compile_text
from slurmdag.model.errors import NothingToResumeError
from slurmdag.model.plan import Plan
from slurmdag.model.states import AllocationState as S
from slurmdag.runs import recovery
from slurmdag.runs.submit import submit_plan
from slurmdag.state.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# a term's ids: `afterok:12:13_4`, `aftercorr:15`, `singleton` has none; ',' joins AND terms, '?' OR terms
_TERM = re.compile(r"^(after|afterany|afterok|afternotok|aftercorr|afterburstbuffer|singleton)(:.*)?$")


def dependency_ids(options: list[str]) -> list[str]:
    """The job ids (array task suffix stripped: `12_4` -> `12`) one sbatch call's --dependency names."""
    deps = [o.split("=", 1)[1] for o in options if o.startswith("--dependency=")]
    assert len(deps) == 1, options  # every job slurmdag submits but the gate waits on something
    ids = []
    for term in re.split(r"[,?]", deps[0]):
        m = _TERM.match(term)
        assert m, f"unexpected dependency term {term!r} in {deps[0]!r}"
        for word in (m.group(2) or ":")[1:].split(":"):
            assert re.fullmatch(r"\d+(_\d+)?", word), f"{word!r} is not a job id ({deps[0]!r})"
            ids.append(word.split("_")[0])
    return ids


class IdIssuingBackend(Backend):
    """Hands out job ids like slurmctld and checks, on every sbatch, that the --dependency names only ids handed out
    earlier in the same submission (a submission starts with its held gate). Nothing else is needed on the success
    path of submit and resume; the rest is not called."""

    def __init__(self) -> None:
        self.next_id = 1000
        self.lock = threading.Lock()
        self.submissions: list[set[str]] = []
        self.checked = 0
        self.violations: list[str] = []

    def submit(self, script: str, options: list[str], directives=None) -> str:
        with self.lock:
            if "--hold" in options:  # the gate: a new submission begins
                self.submissions.append(set())
            else:
                assert self.submissions, "a job was submitted before any gate"
                current = self.submissions[-1]
                for job_id in dependency_ids(options):
                    if job_id not in current:
                        self.violations.append(f"{Path(script).name}: {job_id} not of this submission: {options}")
                self.checked += 1
            job_id = str(self.next_id)
            self.next_id += 1
            self.submissions[-1].add(job_id)
            return job_id

    def release(self, job_ids: Iterable[str]) -> None:
        pass

    def query(self, job_ids: Iterable[str], since: datetime | None = None, steps: bool = False) -> dict[str, JobInfo]:
        raise AssertionError("not on the success path")

    def hold(self, job_ids: Iterable[str]) -> list[str]:
        raise AssertionError("not on the success path")

    def cancel(self, job_ids: Iterable[str]) -> None:
        raise AssertionError("not on the success path")

    def update_dependency(self, job_id: str, expression: str) -> None:
        raise AssertionError("slurmdag never rewrites a dependency on submit or resume")

    def find_jobs(self, name_prefix: str, since: datetime | None = None, include_accounting: bool = True):
        raise AssertionError("not on the success path")

    def read_cluster(self):
        raise AssertionError("not on the success path")

    def job_comments(self, job_ids: Iterable[str], since: datetime) -> dict[str, str]:
        raise AssertionError("not on the success path")


FINISHED = [S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.UNKNOWN]


def fake_status(plan: Plan, states: dict[str, S], tasks: dict[str, dict[int, S]]) -> SimpleNamespace:
    """What status.collect would return for the DAG after its first attempt ended so (only what recover reads)."""
    nodes = []
    for job in plan.allocations():
        t = tasks.get(job.name)
        task_rows = None if t is None else [SimpleNamespace(index=i, state=s) for i, s in sorted(t.items())]
        nodes.append(SimpleNamespace(name=job.name, state=states[job.name], tasks=task_rows))
    return SimpleNamespace(plan=plan, nodes=nodes, allocations=lambda: nodes)


def combined(task_states: dict[int, S]) -> S:
    values = set(task_states.values())
    if values == {S.COMPLETED}:
        return S.COMPLETED
    for s in (S.UNKNOWN, S.FAILED, S.TIMEOUT, S.CANCELLED):
        if s in values:
            return s
    return S.FAILED


def run_and_recover(tmp_path: Path, plan: Plan, draw_state, monkeypatch, redo: str | None = None, cascade=False):
    """Submit `plan`, end its first attempt with drawn outcomes, then resume (or redo); check every sbatch."""
    store = Store(tmp_path / f"home-{id(plan)}-{redo}")
    backend = IdIssuingBackend()
    record = submit_plan(plan, store, backend, log_dir=str(tmp_path / "logs"))
    first = set(backend.submissions[0])
    assert {i.split("_")[0] for i in record.job_ids.values()} <= first
    states: dict[str, S] = {}
    tasks: dict[str, dict[int, S]] = {}
    for job in plan.allocations():
        if job.tasks:
            tasks[job.name] = {i: draw_state() for i in range(job.tasks)}
            states[job.name] = combined(tasks[job.name])
        else:
            states[job.name] = draw_state()
    with monkeypatch.context() as m:
        m.setattr(recovery, "collect", lambda *_a, **_k: fake_status(plan, states, tasks))
        try:
            out = recovery.recover(store, backend, record.dag_id, allocation=redo, cascade=cascade)
        except NothingToResumeError:
            return backend
    assert len(backend.submissions) == 2
    assert not {i.split("_")[0] for i in out.job_ids.values()} & first
    return backend


@st.composite
def workflows(draw) -> str:
    n = draw(st.integers(2, 7))
    sizes = [draw(st.sampled_from([None, None, 2, 3])) for _ in range(n)]
    lines = ["name: prop"]
    if draw(st.booleans()):  # siblings with the same parents packed into array jobs: `<array id>_<task>` terms
        lines.append("auto_array: true")
    if draw(st.booleans()):  # chains fused into one job, its members run as steps
        lines.append("fuse: auto")
    lines.append("allocations:")
    for i in range(n):
        deps = []
        for p in sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else []):
            kinds = ["success", "failure", "any"]
            if sizes[i] is not None and sizes[i] == sizes[p]:
                kinds.append("corresponding")
            deps.append(f"{{n{p}: {draw(st.sampled_from(kinds))}}}")
        line = f'  - {{name: n{i}, entrypoint: "true"'
        if sizes[i]:
            line += f", tasks: {sizes[i]}"
        if deps:
            any_ok = len(deps) > 1 and not any("corresponding" in d for d in deps)
            key = "depends_on_any" if any_ok and draw(st.booleans()) else "depends_on"
            line += f", {key}: [{', '.join(deps)}]"
        lines.append(line + "}")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_rendered_dependency_names_a_job_of_another_submission(data, tmp_path, monkeypatch):
    text = data.draw(workflows())
    plan = compile_text(text, "prop.yaml")
    backend = run_and_recover(tmp_path, plan, lambda: data.draw(st.sampled_from(FINISHED)), monkeypatch)
    assert not backend.violations, (text, backend.violations)
    redo = data.draw(st.sampled_from([j.name for j in plan.allocations()]))
    backend = run_and_recover(
        tmp_path, plan, lambda: data.draw(st.sampled_from(FINISHED)), monkeypatch, redo, data.draw(st.booleans())
    )
    assert not backend.violations, (text, redo, backend.violations)


@pytest.mark.parametrize(
    "example",
    ["auto-array.yaml", "groups.yaml", "sweep.yaml", "design-example.yaml", "demo.yaml", "early-stop.yaml"],
)
@pytest.mark.parametrize("outcome", [S.FAILED, S.CANCELLED, S.UNKNOWN])
def test_the_examples_resume_on_ids_of_their_own_attempt_only(example, outcome, tmp_path, monkeypatch):
    """Packed arrays (`<array id>_<task>` terms), groups (hosted members) and joins, resumed after every other
    allocation failed: the first attempt's ids, completed or not, appear in no dependency of the second."""
    plan = compile_file(EXAMPLES / example)
    turn = iter(range(10_000))
    backend = run_and_recover(tmp_path, plan, lambda: S.COMPLETED if next(turn) % 2 else outcome, monkeypatch)
    assert backend.checked > len(plan.submissions()) and not backend.violations, backend.violations
