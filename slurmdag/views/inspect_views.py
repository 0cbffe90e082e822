"""`slurmdag show`: one allocation as it was submitted. Pure: a dict, and the text made from it."""

from __future__ import annotations

from typing import Any

from slurmdag.compiler import render
from slurmdag.model.plan import Plan, PlannedJob
from slurmdag.model.sbatch_options import render_flag
from slurmdag.runs import logs
from slurmdag.runs.submit import submission_of
from slurmdag.state import attempt_history
from slurmdag.state.store import DagRecord


def _sources(job: PlannedJob) -> dict[str, str]:
    """Option text (and option name, for the one applied) -> where it came from, for a `script:` allocation."""
    out: dict[str, str] = {}
    for line in job.option_sources or []:
        text, _, where = line.partition("  (")
        where = where.rstrip(")")
        out[text.strip()] = where
        if "overridden" not in where and "dropped" not in where:
            out[text.strip().split("=", 1)[0]] = where  # the script's own spelling, e.g. --time=30
    return out


def _source(name: str, flag: str, job: PlannedJob, sources: dict[str, str]) -> str:
    if name in job.options or (name == "time" and job.walltime is not None) or (name == "array" and job.array):
        return sources.get(flag) or sources.get(f"--{name}") or "workflow"
    if name in ("output", "error") and job.kind != "join":
        return "slurmdag (default log file)"
    return "slurmdag"


def allocation_details(record: DagRecord, plan: Plan, job: PlannedJob, script_path: str) -> dict[str, Any]:
    current = attempt_history.current_job_ids(record) if record.attempts else record.job_ids
    names = {j.name: current.get(j.name, f"<{j.name}>") for j in plan.jobs}
    # A packed allocation (auto_array) was submitted as a task of its array job: that job's sbatch call is its own.
    packed = job.host is not None and job.host.task is not None and "_" in current.get(job.name, "_")
    submitted = plan.job(job.host.job) if packed and job.host is not None else job
    dependency = (
        submitted.dependency.render(names) if submitted.dependency and submitted.dependency.terms else "afterok:<gate>"
    )
    sources = _sources(job)
    options = []
    for name, value in render.sbatch_options(submitted, submission_of(record)):  # what its sbatch call said
        flag = render_flag(name, value)
        options.append({"option": flag, "source": _source(name, flag, job, sources)})
    options.append({"option": f"--dependency={dependency}", "source": "slurmdag"})
    attempts = []
    for a in attempt_history.history(record):
        job_id = a.get("job_ids", {}).get(job.name)
        if job_id:
            attempts.append({"attempt": a.get("number"), "job_id": job_id, "tasks": a.get("subsets", {}).get(job.name)})
    paths = logs.allocation_logs(plan, record, job.name)
    try:
        with open(script_path, encoding="utf-8") as fh:
            script = fh.read()
    except OSError:
        script = job.script
    return {
        "dag_id": record.dag_id,
        "workflow": record.name,
        "allocation": job.name,
        "kind": "task group"
        if job.array
        else f"task {job.host.task} of array job {submitted.name} (auto_array)"
        if packed and job.host is not None
        else "single job",
        "tasks": len(logs.tasks_of(plan, job.name)) if job.array else None,
        "depends_on": [{"allocation": e.parent, "condition": e.condition} for e in job.edges],
        "options": options,
        "jobs": attempts,
        "log": None if paths is None else {"stdout": paths.stdout, "stderr": paths.stderr},
        "script_path": script_path,
        "script": script,
    }


def details_text(d: dict[str, Any]) -> str:
    kind = d["kind"] + (f", {d['tasks']} tasks" if d["tasks"] else "")
    lines = [f"allocation {d['allocation']} of DAG {d['dag_id']} ({d['workflow']}): {kind}"]
    if d["depends_on"]:
        deps = ", ".join(
            e["allocation"] + ("" if e["condition"] == "success" else f" [{e['condition']}]") for e in d["depends_on"]
        )
        lines.append(f"depends on: {deps}")
    for j in d["jobs"]:
        tasks = f" (tasks {j['tasks']})" if j["tasks"] else ""
        lines.append(f"attempt {j['attempt']}: job {j['job_id']}{tasks}")
    if not d["jobs"]:
        lines.append("not submitted")
    if d["log"]:
        lines.append(f"stdout: {d['log']['stdout']}")
        if d["log"]["stderr"] != d["log"]["stdout"]:
            lines.append(f"stderr: {d['log']['stderr']}")
    width = max(len(o["option"]) for o in d["options"]) if d["options"] else 0
    lines.append("sbatch options (where each came from):")
    lines += [f"  {o['option']:<{width}}  {o['source']}" for o in d["options"]]
    lines.append(f"script ({d['script_path']}):")
    text = "\n".join(lines) + "\n" + d["script"]
    return text if text.endswith("\n") else text + "\n"
