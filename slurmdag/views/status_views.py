"""Pure views of DAG status: the status table, the --graph tree, the `status --json` document (docs/commands.md),
the list table and the dry-run listings of submit and cancel. Strings and dicts out; the CLI prints them.
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from slurmdag.model.plan import Plan
from slurmdag.runs.logs import FailedLog
from slurmdag.runs.outputs import AllocationOutputs
from slurmdag.runs.status import AllocationStatus, DagStatus


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def failed_log_lines(status: DagStatus, failed: list[FailedLog]) -> list[str]:
    """Where the output of each failed allocation is (status, watch)."""
    if not failed:
        return []
    lines = [f"logs of failed allocations (slurmdag logs {status.dag_id} ALLOCATION):"]
    for f in failed:
        what = f.allocation if f.task is None else f"{f.allocation} task {f.task}"
        more = (
            f" (and {f.more_failed_tasks} more failed task{'s' * (f.more_failed_tasks > 1)})"
            if f.more_failed_tasks
            else ""
        )
        lines.append(f"  {what}: {f.stdout}{more}")
    return lines


def status_table(status: DagStatus, tasks: bool = False, failed: list[FailedLog] | None = None) -> str:
    """Header line, one row per allocation (task groups: one row with per-state counts; --tasks: plus a row per
    task), where failed allocations' logs are, and notes."""
    rows = []
    for node in status.allocations():
        if node.tasks is None:
            state = f"{node.state} ({node.retry.text()})" if node.retry else node.state
            rows.append(
                [node.name, state, _dash(node.job_id), _dash(node.elapsed), _dash(node.exit_code), _dash(node.reason)]
            )
            continue
        rows.append(
            [
                node.name,
                f"{node.state} ({_counts_text(node.task_counts())})",
                _dash(node.job_id),
                "-",
                _dash(node.exit_code),
                _dash(node.reason),
            ]
        )
        if tasks:
            for t in node.tasks:
                rows.append(
                    [f"  [{t.index}]", t.state, t.job_id, _dash(t.elapsed), _dash(t.exit_code), _dash(t.reason)]
                )
    table = tabulate(
        rows,
        headers=["ALLOCATION", "STATE", "JOB ID", "ELAPSED", "EXIT", "REASON"],
        tablefmt="simple",
        disable_numparse=True,
    )
    lines = [
        f"DAG {status.dag_id} ({status.name}): {status.state}"
        + (f" (stopped by {status.stopped_by})" if status.stopped_by else "")
        + (f" (stopped early by {status.stopped_early})" if status.stopped_early else "")
        + f"   [{_counts_text(status.counts())}]"
        + _attempt_text(status),
        table,
    ]
    lines += failed_log_lines(status, failed or [])
    lines += [f"note: {n}" for n in status.notes]
    return "\n".join(lines)


def status_json(
    status: DagStatus, failed: list[FailedLog] | None = None, outputs: list[AllocationOutputs] | None = None
) -> dict[str, Any]:
    """The document of docs/commands.md (status --json); a failed allocation (task) also carries its "log", and
    an allocation that declares or published outputs its "outputs" (name -> value; per task for task groups)."""
    logs = {(f.allocation, f.task): f.stdout for f in failed or []}
    published = {a.name: a for a in outputs or [] if a.declared or a.any_published}
    allocations = []
    for node in status.allocations():
        entry: dict[str, Any] = {
            "name": node.name,
            "job_id": node.job_id,
            "state": node.state.value,
            "slurm_state": node.slurm_state,
            "exit_code": node.exit_code,
            "reason": node.reason,
        }
        if node.retry is not None:  # only allocations with `retries` carry it
            entry["retry"] = {"attempt": node.retry.attempt, "of": node.retry.of, "exit_code": node.retry.exit_code}
        if node.cancelled_by:
            entry["cancelled_by"] = node.cancelled_by  # "upstream", "user" or "stop"
        if (node.name, None) in logs:
            entry["log"] = logs[(node.name, None)]
        mine = published.get(node.name)
        if mine is not None and mine.single is not None:
            entry["outputs"] = dict(mine.single.values)
        if node.tasks is not None:
            entry["tasks"] = [{"index": t.index, "job_id": t.job_id, "state": t.state.value} for t in node.tasks]
            for t in entry["tasks"]:
                if (node.name, t["index"]) in logs:
                    t["log"] = logs[(node.name, t["index"])]
                if mine is not None and mine.tasks is not None:
                    task = mine.tasks.get(t["index"])
                    t["outputs"] = dict(task.values) if task is not None else {}
        allocations.append(entry)
    doc: dict[str, Any] = {
        "dag_id": status.dag_id,
        "name": status.name,
        "state": status.state.value,
        "allocations": allocations,
    }
    if status.stopped_by is not None:  # `on_failure: stop` fired: the allocation whose failure stopped the DAG
        doc["stopped_by"] = status.stopped_by
    if status.stopped_early is not None:  # `stop_if` held: the DAG stopped early (and is Completed)
        doc["stopped_early"] = status.stopped_early
    if status.attempts > 1:  # only resumed/redone DAGs carry these keys: the documented shape stays as it was
        doc["attempt"] = status.attempt
        doc["attempts"] = status.attempts
    return doc


def _attempt_text(status: DagStatus) -> str:
    return f"   attempt {status.attempt} of {status.attempts}" if status.attempts > 1 else ""


def _node_label(node: AllocationStatus | None, name: str, condition: str | None) -> str:
    text = name
    if condition and condition != "success":
        text += f" [{condition}]"
    if node is None:
        return text
    state = str(node.state)
    if node.tasks is not None:
        state += f" ({_counts_text(node.task_counts())})"
    return f"{text}  {state}" + (f"  #{node.job_id}" if node.job_id else "")


def status_tree(status: DagStatus) -> str:
    """Every allocation under each of its parents (gflow `gqueue -t` style). A node reached a second time is
    printed once more, marked `(see above)`, without repeating its subtree."""
    return tree(
        status.plan, {n.name: n for n in status.nodes}, header=f"DAG {status.dag_id} ({status.name}): {status.state}"
    )


def tree(plan: Plan, nodes: dict[str, AllocationStatus], header: str | None = None) -> str:
    allocations = plan.allocations()
    names = {j.name for j in allocations}
    children: dict[str, list[tuple[str, str]]] = {j.name: [] for j in allocations}
    roots = []
    for job in allocations:
        parents = [e for e in job.edges if e.parent in names]
        if not parents:
            roots.append(job.name)
        for edge in parents:
            children[edge.parent].append((job.name, edge.condition))
    lines = [header] if header else []
    shown: set[str] = set()

    def walk(name: str, condition: str | None, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        label = _node_label(nodes.get(name), name, condition)
        if name in shown:
            lines.append(f"{prefix}{branch}{label}  (see above)")
            return
        shown.add(name)
        lines.append(f"{prefix}{branch}{label}")
        kids = children.get(name, [])
        inner = prefix if top else prefix + ("    " if last else "│   ")
        for i, (child, cond) in enumerate(kids):
            walk(child, cond, inner, i == len(kids) - 1, False)

    for root in roots:
        walk(root, None, "", True, True)
    if plan.subworkflows:  # `uses:`: which allocations came from which sub-workflow
        lines.append("sub-workflows:")
        lines += [f"  {name}  ({sub['file']}): {', '.join(sub['members'])}" for name, sub in plan.subworkflows.items()]
    return "\n".join(lines)


def list_table(statuses: list[tuple[Any, str, dict[str, int]]]) -> str:
    """Rows of (record, state, counts), newest first."""
    rows = [
        [r.dag_id, r.name, state, _counts_text(counts) or "-", r.created.replace("+00:00", "Z")]
        for r, state, counts in statuses
    ]
    return tabulate(
        rows, headers=["DAG", "NAME", "STATE", "ALLOCATIONS", "CREATED (UTC)"], tablefmt="simple", disable_numparse=True
    )


def list_json(statuses: list[tuple[Any, str, dict[str, int]]]) -> list[dict[str, Any]]:
    return [
        {
            "dag_id": r.dag_id,
            "name": r.name,
            "state": state,
            "counts": counts,
            "created": r.created,
            "submission": r.submission,
        }
        for r, state, counts in statuses
    ]


def submit_dry_run(plan: Plan, planned: list[Any]) -> str:
    """One block per job: name, kind, dependency by names, sbatch options."""
    lines = [f"Would submit DAG {plan.workflow!r}: a held gate job, then {len(planned)} job(s), then release the gate"]
    for p in planned:
        kind = "" if p.kind == "allocation" else f" ({p.kind})"
        lines.append(f"{p.name}{kind}: depends on {p.dependency}")
        lines.append("  sbatch " + " ".join(p.options))
    return "\n".join(lines)


def cancel_listing(outcome: Any) -> str:
    if outcome.nothing_to_do:
        state = outcome.status.state if outcome.status else "finished"
        return f"DAG {outcome.dag_id} is {state}: nothing to cancel"
    verb = "Would cancel" if outcome.dry_run else "Cancelled"
    rows = [[t.name, t.job_id, t.state] for t in outcome.targets]
    text = f"{verb} {len(rows)} job(s) of DAG {outcome.dag_id}:\n" + tabulate(
        rows, headers=["ALLOCATION", "JOB ID", "STATE BEFORE"], tablefmt="simple", disable_numparse=True
    )
    return text
