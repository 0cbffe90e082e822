"""Checks across allocations (names, references, cycles, task-group sizes, size limit) and the run order. Pure."""

from __future__ import annotations

import graphlib
import heapq

from slurmdag.compiler.spec import AllocationSpec, DepSpec, WorkflowSpec, did_you_mean, problem_at
from slurmdag.model.errors import InputError, Problem, shown

DEFAULT_MAX_ALLOCATIONS = 1000
_MAX_CYCLES_REPORTED = 20


def check(spec: WorkflowSpec, max_allocations: int = DEFAULT_MAX_ALLOCATIONS) -> list[AllocationSpec]:
    """The allocations in run order (parents first, ties in file order); raises InputError listing every problem."""
    problems: list[Problem] = []
    file = spec.file

    def bad(node, message: str, hint: str | None = None, where: str | None = None) -> None:
        problems.append(problem_at(where or file, node, message, hint))

    def at(a: AllocationSpec, dep: DepSpec | None = None) -> str:
        """The file a problem about `a` (or its reference `dep`) points into: sub-workflows have their own."""
        return (dep.file if dep is not None else None) or a.file or file

    if len(spec.allocations) > max_allocations:
        bad(
            spec.allocations_node or spec.node,
            f"the workflow has {len(spec.allocations)} allocations, more than the limit of {max_allocations}",
            "split the workflow, use task groups (tasks/array/matrix) for similar steps, or ask your "
            "site to raise the limit",
        )

    by_name: dict[str, AllocationSpec] = {}
    for a in spec.allocations:
        if not a.name:
            continue
        first = by_name.get(a.name)
        if first is not None:
            bad(a.node.value.get("name"), f"duplicate allocation name {shown(a.name)}", _first_at(first), at(a))
        else:
            by_name[a.name] = a

    # Edges that survive the reference checks: child -> [(parent, dep)]
    parents: dict[str, list[DepSpec]] = {name: [] for name in by_name}
    for a in spec.allocations:
        if by_name.get(a.name) is not a:
            continue
        seen: set[str] = set()
        for key, deps in (("depends_on", a.depends_on), ("depends_on_any", a.depends_on_any)):
            for dep in deps:
                if dep.parent == a.name:
                    bad(
                        dep.node,
                        f"allocation {shown(a.name)} depends on itself",
                        "remove it from its own " + key,
                        at(a, dep),
                    )
                    continue
                parent = by_name.get(dep.parent)
                if parent is None:
                    hint = did_you_mean(dep.parent, by_name) or f"known allocations: {_names_hint(by_name)}"
                    bad(
                        dep.node,
                        f"unknown allocation {shown(dep.parent)} in {key} of {shown(a.name)}",
                        hint,
                        at(a, dep),
                    )
                    continue
                if dep.parent in seen:
                    bad(
                        dep.node,
                        f"{shown(dep.parent)} is listed more than once in the dependencies of {shown(a.name)}",
                        where=at(a, dep),
                    )
                    continue
                seen.add(dep.parent)
                if dep.condition == "corresponding":
                    if key == "depends_on_any":
                        bad(
                            dep.node,
                            "`corresponding` cannot be used in depends_on_any",
                            "use it in depends_on",
                            at(a, dep),
                        )
                        continue
                    msg = _corresponding_problem(parent, a)
                    if msg:
                        bad(
                            dep.node,
                            msg,
                            "both sides of `corresponding` must be task groups with the same task indexes",
                            at(a, dep),
                        )
                        continue
                parents[a.name].append(dep)

    order = _order(spec, by_name, parents, bad)
    if problems:
        raise InputError(problems)
    return order


def _first_at(a: AllocationSpec) -> str | None:
    node = a.node.value.get("name")
    if node is None or node.line is None:
        return None
    return f"first defined at line {node.line}, column {node.col}"


def _names_hint(by_name: dict[str, AllocationSpec]) -> str:
    names = list(by_name)
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _corresponding_problem(parent: AllocationSpec, child: AllocationSpec) -> str | None:
    if parent.indexes is None or child.indexes is None:
        which = [x.name for x in (child, parent) if x.indexes is None]
        return (
            f"`corresponding` between {shown(child.name)} and {shown(parent.name)} needs two task groups; "
            f"{' and '.join(repr(w) for w in which)} {'is' if len(which) == 1 else 'are'} not one"
        )
    if not parent.indexes or not child.indexes:  # refused already (too many tasks)
        return None
    if len(parent.indexes) != len(child.indexes):
        return (
            f"`corresponding` needs task groups of the same size: {shown(child.name)} has {len(child.indexes)} tasks, "
            f"{shown(parent.name)} has {len(parent.indexes)}"
        )
    if parent.indexes != child.indexes:
        return (
            f"`corresponding` needs the same task indexes: {shown(child.name)} is {child.array}, "
            f"{shown(parent.name)} is {parent.array}"
        )
    return None


_CYCLE_SHOWN = 6  # allocations shown at each end of a long cycle


def _cycle_path(cycle: list[str]) -> str:
    """`a -> b -> a`; a long cycle as its first and last few steps and how many are left out between them."""
    names = cycle + [cycle[0]]
    if len(names) <= 2 * _CYCLE_SHOWN + 1:
        return " -> ".join(names)
    left_out = len(names) - 2 * _CYCLE_SHOWN
    head, tail = " -> ".join(names[:_CYCLE_SHOWN]), " -> ".join(names[-_CYCLE_SHOWN:])
    return f"{head} -> ... ({left_out:,} more) ... -> {tail} ({len(cycle):,} allocations)"


def _order(spec: WorkflowSpec, by_name, parents: dict[str, list[DepSpec]], bad) -> list[AllocationSpec]:
    """Topological order with ties broken by file order; every cycle found is reported (one path per cycle)."""
    edges = {child: [d.parent for d in deps] for child, deps in parents.items()}
    for _ in range(_MAX_CYCLES_REPORTED):
        sorter = graphlib.TopologicalSorter(edges)
        try:
            sorter.prepare()
        except graphlib.CycleError as e:
            cycle = e.args[1][:-1]  # each node is a parent of the next; the last repeats the first
            start = min(range(len(cycle)), key=lambda i: by_name[cycle[i]].index)
            cycle = cycle[start:] + cycle[:start]
            parent, child = cycle[-1], cycle[0]  # the edge that closes the loop back to the earliest allocation
            dep = next(d for d in parents[child] if d.parent == parent)
            bad(
                dep.node,
                f"dependency cycle: {_cycle_path(cycle)}",
                "a workflow must be acyclic; remove one of these dependencies",
                dep.file or by_name[child].file or spec.file,
            )
            edges[child] = [p for p in edges[child] if p != parent]  # break it and look for more
            continue
        heap = [(by_name[n].index, n) for n in sorter.get_ready()]
        heapq.heapify(heap)
        out: list[AllocationSpec] = []
        while heap:
            _, name = heapq.heappop(heap)
            out.append(by_name[name])
            sorter.done(name)
            for n in sorter.get_ready():
                heapq.heappush(heap, (by_name[n].index, n))
        return out
    return []
