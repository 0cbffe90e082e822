"""Edges -> native Slurm dependency expressions (design §4), join jobs, and the run order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slurmdag.compiler.api import Workflow
from slurmdag.compiler.compile import compile_text
from slurmdag.model.plan import Dependency, DependencyTerm


def deps(plan, name):
    d = plan.job(name).dependency
    if d is None:
        return None
    return (d.join, [f"{t.kind}:{t.parent}" for t in d.terms])


def wf(*allocs: str, header: str = "") -> str:
    return "name: w\n" + header + "allocations:\n" + "".join(f"  - {a}\n" for a in allocs)


def test_roots_have_no_dependency():
    plan = compile_text(wf("{name: a, entrypoint: x}"))
    assert plan.job("a").dependency is None


def test_each_condition_lowers_to_its_slurm_type():
    plan = compile_text(
        wf(
            "{name: p, entrypoint: x, tasks: 3}",
            "{name: ok, entrypoint: x, depends_on: [p]}",
            "{name: any, entrypoint: x, depends_on: [{p: any}]}",
            "{name: corr, entrypoint: x, tasks: 3, depends_on: [{p: corresponding}]}",
            "{name: fail, entrypoint: x, depends_on: [{p: failure}]}",
        )
    )
    assert deps(plan, "ok") == ("all", ["afterok:p"])
    assert deps(plan, "any") == ("all", ["afterany:p"])
    assert deps(plan, "corr") == ("all", ["aftercorr:p"])
    assert deps(plan, "fail") == ("all", ["afternotok:p"])  # p is a root: submit adds the gate term


def test_failure_also_requires_the_parents_own_dependencies():
    plan = compile_text(
        wf(
            "{name: q, entrypoint: x}",
            "{name: r, entrypoint: x}",
            "{name: p, entrypoint: x, depends_on: [q, {r: any}]}",
            "{name: h, entrypoint: x, depends_on: [{p: failure}]}",
        )
    )
    assert deps(plan, "h") == ("all", ["afternotok:p", "afterok:q", "afterany:r"])


def test_inherited_corresponding_terms_become_afterok():
    plan = compile_text(
        wf(
            "{name: q, entrypoint: x, tasks: 2}",
            "{name: p, entrypoint: x, tasks: 2, depends_on: [{q: corresponding}]}",
            "{name: h, entrypoint: x, depends_on: [{p: failure}]}",
        )
    )
    assert deps(plan, "h") == ("all", ["afternotok:p", "afterok:q"])


def test_several_depends_on_are_anded_and_depends_on_any_is_ored():
    plan = compile_text(
        wf(
            "{name: a, entrypoint: x}",
            "{name: b, entrypoint: x}",
            "{name: both, entrypoint: x, depends_on: [a, b]}",
            "{name: either, entrypoint: x, depends_on_any: [a, {b: any}]}",
        )
    )
    assert deps(plan, "both") == ("all", ["afterok:a", "afterok:b"])
    assert deps(plan, "either") == ("any", ["afterok:a", "afterany:b"])
    assert [j.kind for j in plan.jobs] == ["allocation"] * 4


def test_single_depends_on_any_entry_is_a_plain_and():
    plan = compile_text(wf("{name: a, entrypoint: x}", "{name: b, entrypoint: x, depends_on_any: [a]}"))
    assert deps(plan, "b") == ("all", ["afterok:a"])


def test_and_with_or_goes_through_a_join_job_listed_first():
    plan = compile_text(
        wf(
            "{name: a, entrypoint: x}",
            "{name: b, entrypoint: x}",
            "{name: c, entrypoint: x}",
            "{name: m, entrypoint: x, partition: gpu, account: proj, mem: 8G, depends_on: [c], depends_on_any: [a, b]}",
        )
    )
    names = [j.name for j in plan.jobs]
    assert names == ["a", "b", "c", "m+any", "m"]
    join = plan.job("m+any")
    assert (join.kind, join.for_allocation) == ("join", "m")
    assert deps(plan, "m+any") == ("any", ["afterok:a", "afterok:b"])
    assert deps(plan, "m") == ("all", ["afterok:c", "afterok:m+any"])
    assert join.options == {
        "account": "proj",
        "cpus-per-task": "1",
        "ntasks": "1",
        "partition": "gpu",
    }
    assert join.walltime == 60 and "#SBATCH --time=00:01:00\n" in join.script
    assert join.array is None and join.edges == ()
    assert "\nexit 0\n" in join.script and "#SBATCH --job-name=m+any\n" in join.script


def test_failure_child_of_an_or_node_makes_the_or_go_through_a_join():
    plan = compile_text(
        wf(
            "{name: a, entrypoint: x}",
            "{name: b, entrypoint: x}",
            "{name: p, entrypoint: x, depends_on_any: [a, b]}",
            "{name: h, entrypoint: x, depends_on: [{p: failure}]}",
        )
    )
    assert deps(plan, "p+any") == ("any", ["afterok:a", "afterok:b"])
    assert deps(plan, "p") == ("all", ["afterok:p+any"])
    assert deps(plan, "h") == ("all", ["afternotok:p", "afterok:p+any"])


def test_failure_inside_depends_on_any_gets_its_own_join():
    plan = compile_text(
        wf(
            "{name: q, entrypoint: x}",
            "{name: p, entrypoint: x, depends_on: [q]}",
            "{name: z, entrypoint: x}",
            "{name: h, entrypoint: x, depends_on_any: [{p: failure}, z]}",
        )
    )
    assert deps(plan, "h+failed.p") == ("all", ["afternotok:p", "afterok:q"])
    assert deps(plan, "h") == ("any", ["afterok:h+failed.p", "afterok:z"])
    assert [j.name for j in plan.jobs][-2:] == ["h+failed.p", "h"]


def test_order_is_topological_with_ties_in_file_order():
    plan = compile_text(
        wf(
            "{name: late, entrypoint: x, depends_on: [mid]}",
            "{name: r1, entrypoint: x}",
            "{name: mid, entrypoint: x, depends_on: [r2]}",
            "{name: r2, entrypoint: x}",
            "{name: solo, entrypoint: x}",
        )
    )
    assert [j.name for j in plan.jobs] == ["r1", "r2", "mid", "late", "solo"]


def test_edges_keep_what_the_user_wrote():
    plan = compile_text(
        wf(
            "{name: a, entrypoint: x}",
            "{name: b, entrypoint: x}",
            "{name: d, entrypoint: x}",
            "{name: c, entrypoint: x, depends_on: [{a: failure}], depends_on_any: [{d: any}, b]}",
        )
    )
    edges = [(e.parent, e.condition, e.group) for e in plan.job("c").edges]
    assert edges == [("a", "failure", "all"), ("d", "any", "any"), ("b", "success", "any")]


# --- property: random DAGs --------------------------------------------------------------------------------------

CONDS = ["success", "failure", "any"]


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 14))
    nodes = []
    for i in range(n):
        parents = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=4)) if i else []
        split = draw(st.integers(0, len(parents)))
        conds = draw(st.lists(st.sampled_from(CONDS), min_size=len(parents), max_size=len(parents)))
        nodes.append((parents[:split], parents[split:], conds))
    file_order = draw(st.permutations(range(n)))
    return nodes, file_order


@settings(max_examples=200, deadline=None)
@given(random_dags())
def test_random_dags_never_mix_joins_and_parents_come_first(dag):
    nodes, file_order = dag
    w = Workflow("rand")
    for i in file_order:
        all_parents, any_parents, conds = nodes[i]
        cond = dict(zip(all_parents + any_parents, conds, strict=False))
        w.allocation(
            f"n{i}",
            "true",
            depends_on=[(f"n{p}", cond[p]) for p in all_parents],
            depends_on_any=[(f"n{p}", cond[p]) for p in any_parents],
        )
    plan = w.compile()
    position = {j.name: k for k, j in enumerate(plan.jobs)}
    assert sorted(j.name for j in plan.allocations()) == sorted(f"n{i}" for i in range(len(nodes)))
    for job in plan.jobs:
        dep = job.dependency
        if dep is None:
            continue
        assert isinstance(dep, Dependency) and dep.join in ("all", "any") and dep.terms
        ids = {name: str(100 + k) for k, name in enumerate(position)}
        text = dep.render(ids)
        assert not ("," in text and "?" in text), text
        for parent in dep.parents():
            assert position[parent] < position[job.name], (parent, job.name)
        if job.kind == "allocation":
            i = int(job.name[1:])
            all_parents, any_parents, conds = nodes[i]
            # every parent the user named is reachable from the expression (directly or through a join job)
            reached, todo = set(), list(dep.parents())
            while todo:  # through join jobs, which may chain (an OR join over a failure join)
                p = todo.pop()
                reached.add(p)
                if "+" in p:
                    todo.extend(plan.job(p).parents())
            for p in all_parents + any_parents:
                assert f"n{p}" in reached
    for job in plan.jobs:
        if job.kind == "join":
            assert position[job.name] < position[job.for_allocation]
            # its allocation waits on it with afterok, directly or through its other join job (failure children
            # of that allocation may wait on it too: they inherit its terms)
            users = [
                j
                for j in plan.jobs
                if DependencyTerm("afterok", job.name) in (j.dependency.terms if j.dependency else ())
            ]
            assert any(u.name == job.for_allocation or u.for_allocation == job.for_allocation for u in users)
