"""Sub-workflows (`uses:`): how an included workflow's allocations join the including one. Pure.

`spec` reads and validates the included file (problems point into it) and hands its allocations here:
  * every name gets the using allocation's name as a prefix (`prep-a` + `clean` -> `prep-a.clean`), and so do the
    references between them;
  * its roots (allocations without dependencies) take the using allocation's own `depends_on`/`depends_on_any`;
  * a reference to the using allocation's name from elsewhere becomes the same condition on each of its leaves (the
    allocations nothing else in it depends on, failure handlers left out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = "."  # allowed in allocation names and in Slurm job names


@dataclass
class SubWorkflow:
    name: str  # the using allocation's name: the prefix of its allocations
    file: str  # the included file, as problems name it
    node: Any  # the using allocation's mapping (in the including file)
    roots: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # every allocation it expanded into (nested ones included)


def roots_and_leaves(allocations: Iterable[Any]) -> tuple[list[str], list[str]]:
    """Names of the allocations without dependencies, and of those no other one depends on (handlers left out)."""
    allocs = list(allocations)
    roots = [a.name for a in allocs if not a.depends_on and not a.depends_on_any]
    needed = {d.parent for a in allocs for d in (*a.depends_on, *a.depends_on_any)}
    handlers = {a.name for a in allocs if any(d.condition == "failure" for d in (*a.depends_on, *a.depends_on_any))}
    leaves = [a.name for a in allocs if a.name not in needed and a.name not in handlers]
    return roots, leaves


def prefix(allocations: Iterable[Any], subs: Iterable[SubWorkflow], name: str) -> None:
    """Rename the allocations of a sub-workflow used as `name` (and the nested sub-workflows it has), in place."""
    head = name + SEPARATOR
    for a in allocations:
        a.name = head + a.name
        a.depends_on = [dataclasses.replace(d, parent=head + d.parent) for d in a.depends_on]
        a.depends_on_any = [dataclasses.replace(d, parent=head + d.parent) for d in a.depends_on_any]
    for s in subs:
        s.name = head + s.name
        s.roots = [head + n for n in s.roots]
        s.leaves = [head + n for n in s.leaves]
        s.members = [head + n for n in s.members]


def resolve(
    allocations: Iterable[Any], subs: dict[str, SubWorkflow], bad: Callable[[Any, Any, str, str | None], None]
) -> None:
    """Point every reference to a sub-workflow (by its using allocation's name) at its leaves, in place.

    `bad(dep, allocation, message, hint)` reports a reference that cannot be kept: an OR over a sub-workflow with
    several leaves (Slurm cannot AND inside an OR without a join job per reference)."""
    if not subs:
        return
    for a in allocations:
        a.depends_on = _expand(a, a.depends_on, subs, bad, in_any=False)
        a.depends_on_any = _expand(a, a.depends_on_any, subs, bad, in_any=True)


def _expand(a: Any, deps: list[Any], subs: dict[str, SubWorkflow], bad, in_any: bool) -> list[Any]:
    out = []
    for d in deps:
        sub = subs.get(d.parent)
        if sub is None:
            out.append(d)
            continue
        if in_any and len(sub.leaves) > 1:
            bad(
                d,
                a,
                f"sub-workflow {d.parent!r} ends in {len(sub.leaves)} allocations ({', '.join(sub.leaves)}), "
                "so it cannot be one branch of depends_on_any",
                "list it under depends_on, or name one of its allocations here",
            )
            continue
        out.extend(dataclasses.replace(d, parent=leaf) for leaf in sub.leaves if leaf != a.name)
    return out
