"""The Python API given wrong types: the documented InputError with a path, never a TypeError, AttributeError or
RecursionError from deep inside, and never an object's repr in a script."""

from __future__ import annotations

import pytest

from slurmdag.compiler.api import Workflow
from slurmdag.model.errors import InputError

SELF_LIST: list = []
SELF_LIST.append(SELF_LIST)
SELF_DICT: dict = {}
SELF_DICT["x"] = SELF_DICT


def _with(**allocation):
    w = Workflow("w")
    w.allocation("prep", "true")
    w.allocation("a", "true", **allocation)
    return w


CASES = [
    (
        "depends_on-None",
        lambda: _with(depends_on=None),
        "<python>:allocations[1].depends_on",
        "`depends_on` must be a list of allocation names, not null",
    ),
    (
        "depends_on_any-None",
        lambda: _with(depends_on_any=None),
        "<python>:allocations[1].depends_on_any",
        "`depends_on_any` must be a list of allocation names, not null",
    ),
    (
        "depends_on-number",
        lambda: _with(depends_on=5),
        "<python>:allocations[1].depends_on",
        "`depends_on` must be a list of allocation names, not an integer",
    ),
    (
        "depends_on-object",
        lambda: _with(depends_on=[object()]),
        "<python>:allocations[1].depends_on[0]",
        "unsupported value of type object",
    ),
    (
        "defaults-list",
        lambda: Workflow("w", defaults=["partition"]),
        "<python>:defaults",
        "`defaults` must be a mapping, not a list",
    ),
    (
        "defaults-empty-list",
        lambda: Workflow("w", defaults=[]),
        "<python>:defaults",
        "`defaults` must be a mapping, not a list",
    ),
    (
        "params-list",
        lambda: Workflow("w", params=[1]),
        "<python>:params",
        "`params` must be a mapping of name: value, not a list",
    ),
    (
        "object-param",
        lambda: Workflow("w", params={"p": object()}),
        "<python>:params.p",
        "unsupported value of type object",
    ),
    (
        "self-containing-list",
        lambda: _with(setup=SELF_LIST),
        "<python>:allocations[1].setup[0][0]",
        "this list contains itself",
    ),
    (
        "self-containing-dict",
        lambda: _with(env=SELF_DICT),
        "<python>:allocations[1].env.x.x",
        "this dict contains itself",
    ),
    ("object-key", lambda: _with(env={object(): "1"}), "<python>:allocations[1].env", "a mapping key of type object"),
    (
        "huge-int",
        lambda: _with(nodes=10**5000),
        "<python>:allocations[1].nodes",
        "an integer of 16,610 bits is too long",
    ),
]


@pytest.mark.parametrize("build,where,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_types_in_the_workflow_are_input_errors_with_a_path(build, where, message):
    w = build()
    if not w._allocations:
        w.allocation("a", "echo {{ params.p }}" if "params" in where else "true")
    with pytest.raises(InputError) as info:
        w.compile()
    p = info.value.problems[0]
    assert (p.file, p.message) == (where, message)
    assert "object at 0x" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs,where,message",
    [
        (
            {"overrides": ["p=1"]},
            "<python>:overrides",
            "`overrides` must be a mapping of param name to value, not a list",
        ),
        (
            {"overrides": {"p": object()}},
            "<python>:overrides.p",
            "an override must be a string, number or boolean, not an object of type object",
        ),
        (
            {"template_dirs": "/tmp"},
            "<python>:template_dirs",
            "`template_dirs` must be a list of directories, not str '/tmp'",
        ),
        (
            {"template_dirs": [3]},
            "<python>:template_dirs",
            "`template_dirs` must hold directory paths (str or pathlib.Path)",
        ),
        (
            {"max_allocations": "many"},
            "<python>:max_allocations",
            "`max_allocations` must be a whole number of at least 1, not str 'many'",
        ),
        ({"base_dir": 5}, "<python>:base_dir", "`base_dir` must be a directory path, not int 5"),
    ],
)
def test_wrong_compile_arguments_are_input_errors_with_a_path(kwargs, where, message):
    w = Workflow("w", params={"p": 1})
    w.allocation("a", "echo {{ params.p }}")
    with pytest.raises(InputError) as info:
        w.compile(**kwargs)
    (p,) = info.value.problems
    assert (p.file, p.message) == (where, message)


def test_convenient_forms_still_work(tmp_path):
    (tmp_path / "job.sh").write_text("#!/bin/bash\ntrue\n")
    w = Workflow("w", params={"p": 1})
    prep = w.allocation("prep", script=tmp_path / "job.sh")  # a Path
    w.allocation("single", "true", depends_on=prep)  # one handle, not a list
    w.allocation("by-name", "true", depends_on="prep")  # one name: not its letters
    w.allocation("sweep", "echo {{ params.p }}", matrix={"seed": range(3)}, depends_on_any=[prep])
    plan = w.compile(overrides={"p": 7})
    assert [e.parent for e in plan.job("single").edges] == ["prep"]
    assert [e.parent for e in plan.job("by-name").edges] == ["prep"]
    assert plan.job("sweep").tasks == 3
    assert "echo 7" in plan.job("sweep").script
