"""A compiled workflow's graph as text: an ascii tree, Graphviz dot, or Mermaid. Pure: Plan in, string out.

Only user allocations are drawn (join jobs are an implementation detail); each edge carries its condition, and
edges from depends_on_any are marked "any of". An allocation packed into an array job (auto_array) says which task
of which array it is. `labels` adds text after a node (e.g. its state in `status --graph`).
The members of a group (one Slurm job, docs/semantics.md "Groups") are marked `{group NAME}` in the tree, and drawn
inside one box (a dot cluster, a Mermaid subgraph) named after their group job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from slurmdag.model.plan import Plan, PlannedJob

FORMATS = ("ascii", "dot", "mermaid")


def _node_text(job: PlannedJob, labels: Mapping[str, str] | None, tag: str = "") -> str:
    text = job.name + tag
    if job.array:
        text += f"  array {job.array}"
    if job.host is not None and job.host.task is not None:  # packed by auto_array
        text += f"  (task {job.host.task} of array job {job.host.job})"
    if job.host is not None and job.host.step is not None:
        text += f"  {{group {_group_name(job.host.job)}}}"
    if labels and job.name in labels:
        text += f"  {labels[job.name]}"
    return text


def _group_name(host: str) -> str:
    return host[: -len("+group")] if host.endswith("+group") else host


def _groups(plan: Plan) -> dict[str, list[str]]:
    """group job -> its members, for the groups whose members run as steps."""
    out: dict[str, list[str]] = {}
    for job in plan.allocations():
        if job.host is not None and job.host.step is not None:
            out.setdefault(job.host.job, []).append(job.name)
    return out


def _tag(edge: str) -> str:
    """An edge's condition in brackets after the child's name, as `status --graph` writes it; plain `success`
    (afterok) edges carry none."""
    return f" [{edge}]" if edge and edge != "success" else ""


def _edge_text(condition: str, group: str) -> str:
    return f"any of: {condition}" if group == "any" else condition


def _children(plan: Plan) -> dict[str, list[tuple[str, str]]]:
    """parent -> [(child, edge text)] in plan order."""
    out: dict[str, list[tuple[str, str]]] = {j.name: [] for j in plan.allocations()}
    for job in plan.allocations():
        for e in job.edges:
            out.setdefault(e.parent, []).append((job.name, _edge_text(e.condition, e.group)))
    return out


def to_ascii(plan: Plan, labels: Mapping[str, str] | None = None) -> str:
    """An indented tree from the roots; a node reached again is shown once more as `name (see above)`."""
    jobs = {j.name: j for j in plan.allocations()}
    children = _children(plan)
    roots = [j.name for j in plan.allocations() if not j.edges]
    lines = [f"{plan.workflow}"]
    shown: set[str] = set()

    def walk(name: str, edge: str, prefix: str, last: bool) -> None:
        branch = "└── " if last else "├── "
        tag = _tag(edge)
        if name in shown:
            lines.append(f"{prefix}{branch}{name}{tag}  (see above)")
            return
        shown.add(name)
        lines.append(f"{prefix}{branch}{_node_text(jobs[name], labels, tag)}")
        kids = children.get(name, [])
        for i, (kid, kid_edge) in enumerate(kids):
            walk(kid, kid_edge, prefix + ("    " if last else "│   "), i == len(kids) - 1)

    for i, root in enumerate(roots):
        walk(root, "", "", i == len(roots) - 1)
    if plan.subworkflows:
        lines.append("sub-workflows:")
        for name, sub in plan.subworkflows.items():
            lines.append(f"  {name}  ({sub['file']}): {', '.join(sub['members'])}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    # JSON string escaping is valid for dot's quoted ids too (backslash and double quote escaped).
    return json.dumps(text, ensure_ascii=False)


def to_dot(plan: Plan, labels: Mapping[str, str] | None = None) -> str:
    lines = [f"digraph {_q(plan.workflow)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for i, (host, members) in enumerate(_groups(plan).items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_q('group ' + _group_name(host) + ' (one Slurm job)')};")
        lines += [f"    {_q(m)};" for m in members]
        lines.append("  }")
    for job in plan.allocations():
        lines.append(f"  {_q(job.name)} [label={_q(_node_text(job, labels))}];")
    for i, (name, sub) in enumerate(plan.subworkflows.items()):  # one box around each sub-workflow's allocations
        title = f"{name} ({sub['file']})"
        lines.append(f"  subgraph {_q(f'cluster_{i}')} {{ label={_q(title)};")
        lines += [f"    {_q(m)};" for m in sub["members"]]
        lines.append("  }")
    for job in plan.allocations():
        for e in job.edges:
            style = ", style=dashed" if e.group == "any" else ""
            lines.append(f"  {_q(e.parent)} -> {_q(job.name)} [label={_q(_edge_text(e.condition, e.group))}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Mermaid has no backslash escapes in labels; '#quot;' is its entity for a double quote.
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(plan: Plan, labels: Mapping[str, str] | None = None) -> str:
    """Mermaid flowchart; node ids are n0, n1, ... (allocation names may hold '.', which Mermaid ids cannot)."""
    ids = {j.name: f"n{i}" for i, j in enumerate(plan.allocations())}
    lines = ["flowchart TD"]
    for i, (host, members) in enumerate(_groups(plan).items()):
        lines.append(f"  subgraph g{i}[{_mermaid_text('group ' + _group_name(host) + ' (one Slurm job)')}]")
        lines += [f"    {ids[m]}" for m in members]
        lines.append("  end")
    for job in plan.allocations():
        lines.append(f"  {ids[job.name]}[{_mermaid_text(_node_text(job, labels))}]")
    for i, (name, sub) in enumerate(plan.subworkflows.items()):
        lines.append(f"  subgraph s{i}[{_mermaid_text(name + ' (' + sub['file'] + ')')}]")
        lines += [f"    {ids[m]}" for m in sub["members"] if m in ids]
        lines.append("  end")
    for job in plan.allocations():
        for e in job.edges:
            arrow = "-.->" if e.group == "any" else "-->"
            lines.append(
                f"  {ids[e.parent]} {arrow}|{_mermaid_text(_edge_text(e.condition, e.group))}| {ids[job.name]}"
            )
    return "\n".join(lines) + "\n"


def render_graph(plan: Plan, fmt: str, labels: Mapping[str, str] | None = None) -> str:
    if fmt == "ascii":
        return to_ascii(plan, labels)
    if fmt == "dot":
        return to_dot(plan, labels)
    if fmt == "mermaid":
        return to_mermaid(plan, labels)
    raise ValueError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
