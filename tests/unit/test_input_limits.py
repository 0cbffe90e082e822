"""Hostile input that costs a lot from a small file: every case is a located input error (exit 2, a hint, no
traceback), found quickly, with nothing written or submitted. The numbers are in docs/workflow-format.md, "Limits"."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from slurmdag.compiler import spec
from slurmdag.compiler.api import Workflow
from slurmdag.compiler.compile import compile_file, compile_text
from slurmdag.compiler.yamlsrc import MAX_DEPTH
from slurmdag.model.errors import InputError, InternalError

LOCATED = re.compile(r"^\S+:\d+:\d+: ", re.M)


def validate(path, *args, timeout=60):
    """`slurmdag validate` as a user runs it: (exit code, stderr, wall seconds)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "slurmdag", "validate", str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stderr, time.monotonic() - start


def assert_refused(path, message, *args):
    """Exit 2, `file:line:col: message` with a hint, no traceback."""
    rc, err, _ = validate(path, *args)
    assert rc == 2, err
    assert "Traceback" not in err, err
    first = err.splitlines()[0]
    assert LOCATED.match(first) and message in first, err
    assert "\n  hint: " in err, err
    return err


def refused_quickly(fn, cpu_seconds=2.0):
    """Run fn, which must raise InputError, within `cpu_seconds` of CPU time (wall time varies with the load)."""
    start = time.process_time()
    with pytest.raises(InputError) as info:
        fn()
    used = time.process_time() - start
    assert used < cpu_seconds, f"took {used:.2f} s of CPU"
    return info.value


# --- YAML structure ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 100_000 + "1" + "}" * 100_000,
        "\n" + "".join("  " * i + "- \n" for i in range(200)),
    ],
    ids=["flow-lists", "flow-mappings", "block-lists"],
)
def test_deep_nesting_is_refused_where_it_gets_too_deep(write, body):
    path = write("name: w\nallocations: " + body + "\n")
    err = refused_quickly(lambda: compile_file(path))
    (p,) = err.problems
    assert p.message == f"the file nests mappings and lists more than {MAX_DEPTH} levels deep"
    assert p.line is not None and p.hint
    assert_refused(path, "levels deep")


def test_nesting_up_to_the_limit_is_read():
    text = (
        "name: w\nallocations: [{name: a, entrypoint: x}]\nparams: {}\nx: "
        + "[" * (MAX_DEPTH - 1)
        + "]" * (MAX_DEPTH - 1)
    )
    with pytest.raises(InputError) as info:
        compile_text(text, "wf.yaml")
    assert [p.message for p in info.value.problems] == ["unknown top-level key 'x'"]


def test_a_5000_digit_number_is_a_located_error(write):
    path = write("name: w\nallocations:\n  - {name: a, entrypoint: x, nodes: " + "9" * 5000 + "}\n")
    err = assert_refused(path, "a number of more than")
    assert len(err) < 600  # the value is not echoed whole
    assert f"{path}:3:37: invalid value '999" in err


def test_a_second_document_and_alias_cycles_are_located(write):
    p = refused_quickly(lambda: compile_file(write("name: w\n---\nname: x\n"))).problems[0]
    assert (p.line, p.col, p.message) == (
        2,
        1,
        "invalid YAML: expected a single document in the stream, but found another document",
    )
    p = refused_quickly(lambda: compile_file(write("name: w\nallocations: &a [*a]\n"))).problems[0]
    assert (p.line, p.col) == (2, 18) and "inside its own anchor" in p.message
    p = refused_quickly(lambda: compile_file(write("name: w\nallocations: *nope\n"))).problems[0]
    assert (p.line, p.col, p.message) == (2, 14, "invalid YAML: found undefined alias 'nope'")


def test_a_huge_name_is_echoed_cut(write):
    name = "a" * (1 << 20)
    path = write(f"name: w\nallocations:\n  - name: {name}\n    entrypoint: x\n    wall: 1\n")
    err = assert_refused(path, "invalid allocation name 'aaaa")
    assert len(err) < 2000, len(err)
    assert "(1,048,576 characters)" in err


# --- names end where the string ends ---------------------------------------------------------------------------------

NEWLINE_NAMES = [
    ("allocation name", 'name: w\nallocations:\n  - {name: "train\\n", entrypoint: x, nodes: 2}\n', (3, 12)),
    ("workflow name", 'name: "w\\n"\nallocations:\n  - {name: a, entrypoint: x}\n', (1, 7)),
    ("env key", 'name: w\nallocations:\n  - {name: a, entrypoint: x, env: {"A\\n": 1}}\n', (3, 36)),
    ("matrix key", 'name: w\nallocations:\n  - {name: a, entrypoint: x, matrix: {"m\\n": [1]}}\n', (3, 39)),
    ("param name", 'name: w\nparams: {"p\\n": 1}\nallocations:\n  - {name: a, entrypoint: x}\n', (2, 10)),
]


@pytest.mark.parametrize("what,text,where", NEWLINE_NAMES, ids=[c[0] for c in NEWLINE_NAMES])
def test_a_name_ending_in_a_newline_is_refused(write, what, text, where):
    path = write(text)
    with pytest.raises(InputError) as info:
        compile_file(path)
    (p,) = info.value.problems
    assert (p.line, p.col) == where and "\\n" in p.message, p
    assert_refused(path, "invalid")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Workflow("w").allocation("train\n", "x", nodes=2),
        lambda: Workflow("w\n").allocation("a", "x"),
        lambda: Workflow("w").allocation("a", "x", env={"A\n": "1"}),
        lambda: Workflow("w").allocation("a", "x", matrix={"m\n": [1]}),
        lambda: Workflow("w", params={"p\n": 1}).allocation("a", "x"),
    ],
    ids=["allocation", "workflow", "env", "matrix", "param"],
)
def test_the_python_api_refuses_the_same_names(build):
    handle = build()
    with pytest.raises(InputError) as info:
        handle.workflow.compile()
    assert info.value.problems[0].file.startswith("<python>")


# --- the last check on every rendered script -----------------------------------------------------------------------


def test_a_name_that_slips_past_validation_is_caught_in_the_rendered_script(monkeypatch):
    monkeypatch.setattr(spec, "NAME_RE", re.compile(r".+", re.S))  # as the validation was before the fix
    w = Workflow("w")
    w.allocation("train\n", "x", nodes=2, partition="debug", walltime=10)
    with pytest.raises(InternalError) as info:
        w.compile()
    text = str(info.value)
    assert text.startswith("the batch script rendered for 'train\\n' ")
    assert "'--nodes=2', '--partition=debug', '--time=00:10:00'" in text


@pytest.mark.parametrize(
    "template,expected",
    [
        ("#!/bin/bash\n# no directives\n{{ job.entrypoint }}\n", "missing: '--job-name=a', '--nodes=2'"),
        (
            "#!/bin/bash\n{% for d in job.directives %}#SBATCH {{ d }}\n{% endfor %}#SBATCH --hold\ntrue\n",
            "not planned: '--hold'",
        ),
        ("#!/bin/bash\n{% for d in job.directives %}#SBATCH {{ d }} x\n{% endfor %}true\n", "'x' is not an option"),
    ],
    ids=["drops-the-block", "adds-a-directive", "adds-a-word"],
)
def test_a_template_whose_block_is_not_the_plan_is_refused(tmp_path, template, expected):
    (tmp_path / "job.sbatch.j2").write_text(template)
    w = Workflow("w")
    w.allocation("a", "true", nodes=2)
    with pytest.raises(InternalError) as info:
        w.compile(template_dirs=[tmp_path])
    assert "the batch script rendered for 'a'" in str(info.value)
    assert expected in str(info.value)
    assert str(tmp_path / "job.sbatch.j2") in str(info.value)
