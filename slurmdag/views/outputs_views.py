"""Pure views of what a DAG's jobs published (`slurmdag outputs`, the "outputs" of `status --json`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from slurmdag.runs.outputs import AllocationOutputs, Published


def published_json(p: Published) -> dict[str, Any]:
    doc: dict[str, Any] = {"outputs": dict(p.values), "missing": list(p.missing)}
    if p.truncated:
        doc["truncated"] = list(p.truncated)
    if p.has_result:
        doc["result"] = p.result
    if p.result_repr is not None:
        doc["repr"] = p.result_repr
    if p.error:
        doc["error"] = p.error
    return doc


def allocation_json(a: AllocationOutputs) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": a.name, "declared": list(a.declared)}
    if a.single is not None:
        doc.update(published_json(a.single))
    else:
        doc["tasks"] = [{"index": i, **published_json(p)} for i, p in sorted((a.tasks or {}).items())]
    return doc


def outputs_json(dag_id: str, run_dir: str, allocations: Iterable[AllocationOutputs]) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_dir": run_dir, "allocations": [allocation_json(a) for a in allocations]}


def shown_value(value: str) -> str:
    """A value on one line: as it is when printable, else as a JSON string."""
    return value if value.isprintable() else json.dumps(value, ensure_ascii=False)


def outputs_text(allocations: Iterable[AllocationOutputs], every: bool) -> str:
    """`NAME[TASK]  output = value` lines; `every`: also allocations that declare and published nothing."""
    rows: list[tuple[str, str]] = []
    for a in allocations:
        if not every and not a.declared and not a.python_step and not a.any_published:
            continue
        pubs = (
            [(a.name, a.single)]
            if a.single is not None
            else [(f"{a.name}[{i}]", p) for i, p in (a.tasks or {}).items()]
        )
        if not pubs or not any(p.values or p.has_result or p.result_repr or p.error or p.missing for _, p in pubs):
            rows.append((a.name, "(nothing published yet)"))
            continue
        for who, p in pubs:
            for name, value in p.values.items():
                cut = " (cut at 1 MiB)" if name in p.truncated else ""
                rows.append((who, f"{name} = {shown_value(value)}{cut}"))
            if p.has_result:
                rows.append((who, f"result = {json.dumps(p.result, ensure_ascii=False)}"))
            elif p.result_repr is not None:
                rows.append((who, f"result = {shown_value(p.result_repr)}"))
            if p.error:
                rows.append((who, f"raised {shown_value(p.error)}"))
            for name in p.missing:
                rows.append((who, f"{name}: not published"))
    if not rows:
        return "no allocation of this DAG declares or published outputs\n"
    width = max(len(w) for w, _ in rows)
    return "".join(f"{w.ljust(width)}  {text}\n" for w, text in rows)
