"""Sub-workflows (`uses:` + `with:`): expansion, edges into and out of them, params, views, and every error case
located in the file it is in (the included file's own line and column)."""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_file
from slurmdag.model.errors import InputError
from slurmdag.views.graph_formats import render_graph

from .conftest import EXAMPLES, problem_lines

SUB = """\
name: prep
params: {dataset: none}
allocations:
  - name: clean
    entrypoint: "echo clean {{ params.dataset }}"
  - name: split
    entrypoint: "echo split {{ params.dataset }}"
    depends_on: [clean]
  - name: check
    entrypoint: "echo check"
    depends_on: [clean]
  - name: on-fail
    entrypoint: "echo oops"
    depends_on: [{clean: failure}]
"""


def _deps(plan, name):
    job = plan.job(name)
    return sorted((t.kind, t.parent) for t in job.dependency.terms) if job.dependency else []


@pytest.fixture
def put(write, tmp_path):
    """write(), creating the folders a name needs."""

    def _put(text: str, name: str = "wf.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        return write(text, name)

    return _put


def _problems(path) -> list[str]:
    with pytest.raises(InputError) as err:
        compile_file(path)
    return [line.replace(f"{path.parent}/", "") for line in problem_lines(err.value)]


def test_the_example_uses_one_sub_workflow_twice():
    plan = compile_file(EXAMPLES / "subworkflows" / "pipeline.yaml")
    assert [j.name for j in plan.allocations()] == [
        "fetch",
        "prep-a.clean",
        "prep-a.split",
        "prep-b.clean",
        "prep-b.split",
        "train",
    ]
    assert _deps(plan, "prep-a.clean") == [("afterok", "fetch")]  # an edge into it: on its roots
    assert _deps(plan, "train") == [("afterok", "prep-a.split"), ("afterok", "prep-b.split")]  # out: its leaves
    assert 'echo "cleaning cifar"' in plan.job("prep-a.clean").script
    assert 'echo "cleaning imagenet"' in plan.job("prep-b.clean").script
    assert set(plan.subworkflows) == {"prep-a", "prep-b"}
    assert plan.subworkflows["prep-a"]["members"] == ["prep-a.clean", "prep-a.split"]


def test_edges_keep_their_conditions_and_leaves_leave_out_handlers(put):
    write = put
    write(SUB, "sub/prep.yaml")
    path = write(
        """
        name: w
        params: {dataset: top}
        allocations:
          - {name: first, entrypoint: "echo {{ params.dataset }}"}
          - {name: p, uses: sub/prep.yaml, with: {dataset: mine}, depends_on: [{first: any}]}
          - {name: after, entrypoint: x, depends_on: [{p: failure}]}
          - {name: direct, entrypoint: x, depends_on: [p.clean]}
        """
    )
    plan = compile_file(path)
    assert _deps(plan, "p.clean") == [("afterany", "first")]
    # leaves: split and check (on-fail is a failure handler); `failure` is kept on each, with its own terms
    assert _deps(plan, "after") == [("afternotok", "p.check"), ("afternotok", "p.split"), ("afterok", "p.clean")]
    assert _deps(plan, "direct") == [("afterok", "p.clean")]
    assert "echo clean mine" in plan.job("p.clean").script
    assert "echo top" in plan.job("first").script  # the including workflow keeps its own params
    text = render_graph(plan, "ascii")
    assert "sub-workflows:" in text and "p  (" in text
    assert "subgraph" in render_graph(plan, "dot") and "subgraph" in render_graph(plan, "mermaid")


def test_nested_sub_workflows_get_both_prefixes(put):
    write = put
    write("name: inner\nallocations:\n  - {name: x, entrypoint: x}\n", "a/inner.yaml")
    write(
        "name: mid\nallocations:\n  - {name: i, uses: inner.yaml}\n  - {name: y, entrypoint: y, depends_on: [i]}\n",
        "a/mid.yaml",
    )
    path = write(
        "name: w\nallocations:\n  - {name: m, uses: a/mid.yaml}\n  - {name: z, entrypoint: z, depends_on: [m]}\n"
    )
    plan = compile_file(path)
    assert [j.name for j in plan.allocations()] == ["m.i.x", "m.y", "z"]
    assert _deps(plan, "m.y") == [("afterok", "m.i.x")]
    assert _deps(plan, "z") == [("afterok", "m.y")]
    assert set(plan.subworkflows) == {"m", "m.i"}


def test_the_allocation_limit_counts_expanded_allocations(write):
    write("name: s\nallocations:\n" + "".join(f"  - {{name: a{i}, entrypoint: x}}\n" for i in range(3)), "s.yaml")
    path = write("name: w\nallocations:\n  - {name: p, uses: s.yaml}\n  - {name: q, uses: s.yaml}\n")
    with pytest.raises(InputError) as err:
        compile_file(path, max_allocations=5)
    assert "the workflow has 6 allocations, more than the limit of 5" in str(err.value)


ERRORS = {
    "problem-inside-the-sub-workflow": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x, walltime: soon}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml}\n",
        ["sub.yaml:3:40: invalid walltime 'soon': not one of the accepted forms"],
    ),
    "unknown-reference-inside": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x, depends_on: [nope]}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml}\n",
        ["sub.yaml:3:43: unknown allocation 'p.nope' in depends_on of 'p.a'"],
    ),
    "missing-file": (
        {},
        "name: w\nallocations:\n  - {name: p, uses: nowhere.yaml}\n",
        ["wf.yaml:3:21: cannot use 'nowhere.yaml': no such file"],
    ),
    "cycle-of-includes": (
        {
            "a.yaml": "name: a\nallocations:\n  - {name: b, uses: b.yaml}\n",
            "b.yaml": "name: b\nallocations:\n  - {name: a, uses: a.yaml}\n",
        },
        "name: w\nallocations:\n  - {name: p, uses: a.yaml}\n",
        ["b.yaml:3:21: sub-workflow cycle: a.yaml -> b.yaml -> a.yaml"],
    ),
    "uses-itself": (
        {},
        "name: w\nallocations:\n  - {name: p, uses: wf.yaml}\n",
        ["wf.yaml:3:21: sub-workflow cycle: wf.yaml -> wf.yaml"],
    ),
    "unknown-with-param": (
        {"sub.yaml": "name: s\nparams: {dataset: x}\nallocations:\n  - {name: a, entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml, with: {datset: y}}\n",
        ["wf.yaml:3:38: 'datset' is not a param of sub-workflow sub.yaml"],
    ),
    "other-keys-on-a-uses-allocation": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml, nodes: 2}\n",
        ["wf.yaml:3:31: `nodes` cannot be set on 'p', which uses a sub-workflow"],
    ),
    "duplicate-name": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml}\n  - {name: p, entrypoint: x}\n",
        ["wf.yaml:4:12: duplicate allocation name 'p'"],
    ),
    "any-over-several-leaves": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml}\n  - {name: q, entrypoint: x, depends_on_any: [p]}\n",
        [
            "wf.yaml:4:47: sub-workflow 'p' ends in 2 allocations (p.a, p.b), "
            "so it cannot be one branch of depends_on_any"
        ],
    ),
    "unknown-reference-into-uses-deps": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: a, entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: p, uses: sub.yaml, depends_on: [nope]}\n",
        ["wf.yaml:3:44: unknown allocation 'nope' in depends_on of 'p.a'"],
    ),
    "names-too-long": (
        {"sub.yaml": "name: s\nallocations:\n  - {name: " + "a" * 60 + ", entrypoint: x}\n"},
        "name: w\nallocations:\n  - {name: prep, uses: sub.yaml}\n",
        [
            "wf.yaml:3:12: the allocations of 'prep' would be named up to 65 characters ('prep."
            + "a" * 55
            + "'... (65 characters)), more than 64"
        ],
    ),
}


@pytest.mark.parametrize(("files", "text", "expected"), ERRORS.values(), ids=ERRORS.keys())
def test_sub_workflow_errors_are_located(write, files, text, expected):
    for name, body in files.items():
        write(body, name)
    assert _problems(write(text)) == expected


def test_expansion_and_nesting_are_bounded(put, monkeypatch):
    from slurmdag.compiler import spec

    put("name: s\nallocations:\n" + "".join(f"  - {{name: a{i}, entrypoint: x}}\n" for i in range(4)), "s.yaml")
    uses = "".join(f"  - {{name: p{i}, uses: s.yaml}}\n" for i in range(5))
    monkeypatch.setattr(spec, "MAX_EXPANDED_ALLOCATIONS", 10)
    lines = _problems(put("name: w\nallocations:\n" + uses))
    assert lines == ["wf.yaml: the sub-workflows expand into more than 10 allocations"]

    monkeypatch.setattr(spec, "MAX_EXPANDED_ALLOCATIONS", 100_000)
    monkeypatch.setattr(spec, "MAX_USES_DEPTH", 2)
    put("name: c\nallocations:\n  - {name: x, entrypoint: x}\n", "c.yaml")
    put("name: b\nallocations:\n  - {name: c, uses: c.yaml}\n", "b.yaml")
    put("name: a\nallocations:\n  - {name: b, uses: b.yaml}\n", "a.yaml")
    lines = _problems(put("name: w\nallocations:\n  - {name: a, uses: a.yaml}\n"))
    assert lines == ["b.yaml:3:21: sub-workflows are nested more than 2 deep"]
