"""Hostile input that costs a lot from a small file: every case is a located input error (exit 2, a hint, no
traceback), found quickly, with nothing written or submitted. The numbers are in docs/workflow-format.md, "Limits"."""

from __future__ import annotations

import os
import re
import stat
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
    assert text.startswith("the batch script rendered by ") and " for 'train\\n' is not what the plan says" in text
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
    assert " for 'a' is not what the plan says" in str(info.value)
    assert expected in str(info.value)
    assert str(tmp_path / "job.sbatch.j2") in str(info.value)


# --- files that are not files, or too big -----------------------------------------------------------------------


def test_a_script_that_is_a_fifo_or_a_device_is_refused_without_reading_it(write, tmp_path):
    os.mkfifo(tmp_path / "fifo.sh")
    path = write(
        "name: w\nallocations:\n  - {name: a, script: fifo.sh}\n  - {name: b, script: /dev/zero}\n"
        "  - {name: c, script: /tmp}\n"
    )
    err = refused_quickly(lambda: compile_file(path))
    assert [(p.line, p.col, p.message) for p in err.problems] == [
        (3, 23, "script 'fifo.sh' is a named pipe (FIFO), not a file"),
        (4, 23, "script '/dev/zero' is a character device, not a file"),
        (5, 23, "script '/tmp' is a directory, not a file"),
    ]
    assert_refused(path, "is a named pipe (FIFO), not a file")  # the CLI does not hang on it either


def test_a_script_over_slurms_default_size_limit_is_refused(write, tmp_path):
    line = "# " + "x" * 97 + "\n"
    (tmp_path / "big.sh").write_text("#!/bin/bash\n" + line * (5 * 1024 * 1024 // 100) + "true\n")
    (tmp_path / "fits.sh").write_text("#!/bin/bash\n" + line * (3 * 1024 * 1024 // 100) + "true\n")
    err = refused_quickly(lambda: compile_file(write("name: w\nallocations:\n  - {name: a, script: big.sh}\n")))
    (p,) = err.problems
    assert (p.line, p.col, p.message) == (3, 23, "script 'big.sh' is 5 MB, more than 4 MB")
    assert "max_script_size" in p.hint
    plan = compile_file(write("name: w\nallocations:\n  - {name: a, script: fits.sh}\n"))
    assert len(plan.job("a").script) > 3 * 1024 * 1024


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_workflow_file_that_is_not_a_file_is_refused(tmp_path, target):
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    rc, err, _ = validate(target)
    assert rc == 2 and "Traceback" not in err
    assert err.startswith(f"{target}: is a ")


def test_a_huge_workflow_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "wf.yaml"
    with open(path, "wb") as fh:
        fh.truncate(spec.MAX_WORKFLOW_BYTES + 1)  # sparse: no need to write it
    err = refused_quickly(lambda: compile_file(path), cpu_seconds=0.5)
    assert err.problems[0].message == "the workflow file is 16,777,217 bytes, more than 16,777,216 bytes"


@pytest.mark.parametrize("key", ["entrypoint", "setup", "env", "matrix"])
def test_dos_line_breaks_in_script_text_are_refused_where_written(key):
    value = "echo a\r\necho b"
    keys = {
        "entrypoint": {},
        "setup": {"setup": [value]},
        "env": {"env": {"V": value}},
        "matrix": {"matrix": {"m": [value]}},
    }[key]
    w = Workflow("w")
    w.allocation("a", value if key == "entrypoint" else "true", **keys)
    with pytest.raises(InputError) as info:
        w.compile()
    (p,) = info.value.problems
    assert "DOS line break" in p.message and p.file.startswith("<python>:allocations[0].")


@pytest.mark.parametrize(
    "yaml_text, where",
    [
        # found by hypothesis: the script's own newline follows the \r, making the \r\n that sbatch refuses
        ('name: w\nallocations:\n  - name: a\n    entrypoint: "0\\r"\n', (4, 17)),
        ('name: w\nallocations:\n  - name: a\n    entrypoint: x\n    setup: ["module load x\\r"]\n', (5, 13)),
        ('name: w\nparams: {cmd: "run\\r"}\nallocations:\n  - name: a\n    entrypoint: "{{ params.cmd }}"\n', (5, 17)),
    ],
)
def test_a_trailing_carriage_return_is_refused_where_written(yaml_text, where):
    with pytest.raises(InputError) as info:
        compile_text(yaml_text, file="w.yaml")
    (p,) = info.value.problems
    assert "\\r" in p.message
    assert (p.line, p.col) == where


# --- templates ---------------------------------------------------------------------------------------------------

HOSTILE_TEMPLATES = {
    "power": ("{{ 7**(10**8) }}", "`**` would make a number of more than 4096 bits"),
    "repeat": ("{{ 'x' * 400000000 }}", "`*` would make 400,000,000 items"),
    "nested-loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "evaluation takes more than 1 s of CPU time",
    ),
    "loops-over-a-local": (
        "{% set s = 'x' * 1000 %}{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}",
        "evaluation takes more than 1 s",
    ),
    "list-doubled-in-a-loop": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
        "a value that would print as more than 1,000,000 characters",
    ),
    "text-doubled-in-a-loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "more than 1,000,000",
    ),
    "captured-output-doubled": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set b %}{{ ns.s }}{{ ns.s }}{% endset %}"
        "{% set ns.s = b %}{% endfor %}",
        "the output would be more than 1,000,000 characters",
    ),
    "filter-block": (
        "{% filter upper %}{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}{% endfilter %}",
        "the output would be more than 1,000,000 characters",
    ),
    "macro-doubling": (
        "{% macro f(x, n) %}{{ f([x, x], n - 1) if n else x|length }}{% endmacro %}{{ f([1], 60) }}",
        "more than 1,000,000 characters",
    ),
    "number-squared-in-a-loop": (
        "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x }}",
        "`*` would make a number of more than 4096 bits",
    ),
    "center": ("{{ 'x'|center(999999999) }}", "a number argument of more than 1,000,000"),
    "ljust": ("{{ 'x'.ljust(999999999) }}", "a number argument of more than 1,000,000"),
    "expandtabs": ("{{ ('\\t' * 1000).expandtabs(100000) }}", "the string method 'expandtabs' is not available"),
    "replace": ("{{ ('x' * 100000)|replace('x', 'y' * 100000) }}", "`replace` would make more than"),
    "join": ("{{ ('x' * 99999).join(range(99999)) }}", "`join` would make more than"),
    "percent-width": ("{{ '%0999999999d' % 1 }}", "a `%` format width must be a number up to"),
    "format-width": ("{{ '{:>999999999}'.format(1) }}", "a `format` width must be a number up to"),
    "indent": ("{{ ('\\n' * 100000)|indent(100000) }}", "`indent` would make more than"),
    "to-bytes": ("{{ ((1).to_bytes(1000000, 'big') * 1000000)|length }}", "`*` would make 1,000,000,000,000 items"),
    "recursion": ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
}


@pytest.mark.parametrize("text,message", HOSTILE_TEMPLATES.values(), ids=HOSTILE_TEMPLATES.keys())
def test_hostile_templates_are_refused_within_bounds(text, message):
    w = Workflow("w", params={"p": 1})
    w.allocation("a", "echo " + text)
    (p,) = refused_quickly(w.compile).problems
    assert p.file == "<python>:allocations[0].entrypoint"
    assert p.message.startswith("cannot render `entrypoint`: ") and message in p.message, p.message


def test_ordinary_templates_still_work():
    w = Workflow("w", params={"lr": 0.01, "n": 3, "name": "run"})
    w.allocation(
        "a",
        "train --lr={{ params.lr }} --seeds={{ range(params.n)|join(',') }} --big={{ 2**64 }} "
        "--tag={{ params.name|upper ~ '-' ~ '%03d' % params.n }} --pad={{ 'x'.ljust(3, '.') }}"
        "{% for i in range(2) %} -v{% endfor %} {{ '{}/{}'.format(params.name, params.n) }}",
    )
    script = w.compile().job("a").script
    assert "train --lr=0.01 --seeds=0,1,2 --big=18446744073709551616 --tag=RUN-003 --pad=x.. -v -v run/3\n" in script


def test_the_template_time_of_a_whole_workflow_is_bounded(monkeypatch):
    from slurmdag.compiler import template_sandbox

    monkeypatch.setattr(template_sandbox, "SECONDS_PER_TEXT", 0.1)
    monkeypatch.setattr(template_sandbox, "SECONDS_PER_WORKFLOW", 0.35)
    w = Workflow("w")
    for i in range(10):  # different texts: each is evaluated, not taken from the cache
        w.allocation(
            f"a{i}",
            f"echo {i} {{% for i in range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}",
        )
    err = refused_quickly(w.compile, cpu_seconds=1.5)
    messages = [p.message for p in err.problems]
    assert len(messages) == 10
    assert sum("evaluation takes more than 0.1 s" in m for m in messages) in (3, 4)
    assert (
        messages[-1]
        == "cannot render `entrypoint`: not evaluated: the workflow's templates already used 0.35 s of CPU time"
    )


# --- task groups ----------------------------------------------------------------------------------------------------


def test_a_huge_matrix_is_refused_before_it_is_expanded(write):
    values = ", ".join(str(i) for i in range(200))
    path = write(
        f"name: w\nallocations:\n  - name: a\n    entrypoint: x\n    matrix:\n      a: [{values}]\n"
        f"      b: [{values}]\n      c: [{', '.join(str(i) for i in range(98))}]\n"
    )
    (p,) = refused_quickly(lambda: compile_file(path)).problems
    assert (p.line, p.col, p.message) == (6, 7, "the matrix has 3,920,000 combinations, more than 100,000")
    assert_refused(path, "3,920,000 combinations")


def test_tasks_are_counted_before_they_are_expanded(write):
    (p,) = refused_quickly(
        lambda: compile_file(write("name: w\nallocations:\n  - {name: a, entrypoint: x, tasks: 3999999}\n"))
    ).problems
    assert (p.line, p.col, p.message) == (3, 37, "`tasks` asks for 3,999,999 tasks, more than 1,000,000")
    allocations = "".join(f"  - {{name: a{i}, entrypoint: x, array: '0-599999'}}\n" for i in range(1000))
    problems = refused_quickly(lambda: compile_file(write("name: w\nallocations:\n" + allocations))).problems
    assert [(p.line, p.message) for p in problems] == [
        (4, "`array` asks for 600,000 tasks, which makes 1,200,000 in the workflow, more than 1,000,000")
    ]


def test_an_array_that_repeats_its_ranges_is_refused_before_it_is_expanded(write):
    array = ",".join(["0-3999999"] * 1000)
    (p,) = refused_quickly(
        lambda: compile_file(write(f"name: w\nallocations:\n  - {{name: a, entrypoint: x, array: '{array}'}}\n"))
    ).problems
    assert p.message == "`array` asks for 4,000,000,000 tasks, more than 1,000,000"


def test_a_rendered_script_over_4_mb_is_refused_at_the_allocation(write):
    long_values = ", ".join(f"v{i:04d}" + "x" * 100 for i in range(1000))
    path = write(
        f"name: w\nallocations:\n  - name: a\n    entrypoint: x\n    matrix:\n      a: [{long_values}]\n"
        f"      b: [{', '.join(str(i) for i in range(50))}]\n"
    )
    (p,) = refused_quickly(lambda: compile_file(path), cpu_seconds=5).problems
    assert (p.line, p.col) == (6, 7)
    assert re.fullmatch(r"the batch script of allocation 'a' would be [5-9]\.\d MB, more than 4 MB", p.message)


# --- messages and graph limits ---------------------------------------------------------------------------------------


def test_a_huge_cycle_is_reported_as_an_excerpt(write):
    n = 10_000
    allocations = "".join(f"  - {{name: a{i}, entrypoint: x, depends_on: [a{(i + 1) % n}]}}\n" for i in range(n))
    path = write("name: w\nallocations:\n" + allocations)
    (p,) = refused_quickly(lambda: compile_file(path, max_allocations=n), cpu_seconds=5).problems
    assert p.message == (
        "dependency cycle: a0 -> a9999 -> a9998 -> a9997 -> a9996 -> a9995 -> ... (9,989 more) ... "
        "-> a5 -> a4 -> a3 -> a2 -> a1 -> a0 (10,000 allocations)"
    )
    assert (p.line, p.col) == (3, 44)


def test_a_short_cycle_is_reported_whole(write):
    text = "name: w\nallocations:\n" + "".join(
        f"  - {{name: a{i}, entrypoint: x, depends_on: [a{(i + 1) % 3}]}}\n" for i in range(3)
    )
    (p,) = refused_quickly(lambda: compile_file(write(text))).problems
    assert p.message == "dependency cycle: a0 -> a2 -> a1 -> a0"


def test_an_empty_depends_on_any_is_an_error(write):
    path = write(
        "name: w\nallocations:\n  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x, depends_on_any: []}\n"
    )
    (p,) = refused_quickly(lambda: compile_file(path)).problems
    assert (p.line, p.col, p.message) == (4, 46, "`depends_on_any` is empty")
    assert_refused(path, "`depends_on_any` is empty")


def test_100000_allocations_are_refused_where_the_limit_is_passed_and_fast(write):
    allocations = "".join(f"  - {{name: a{i}, entrypoint: x}}\n" for i in range(100_000))
    path = write("name: w\nallocations:\n" + allocations)
    (p,) = refused_quickly(lambda: compile_file(path), cpu_seconds=0.5).problems  # was ~16 s
    assert (p.line, p.col, p.message) == (1003, 5, "the workflow has more than 1,000 allocations")
    err = assert_refused(path, f"{path}:1003:5: the workflow has more than 1,000 allocations")
    assert "max_allocations = 1000 (set by built-in default)" in err  # validate names the policy's limit


# --- compile -o DIR ------------------------------------------------------------------------------------------------


def _compile_cli(workflow, out):
    return subprocess.run(
        [sys.executable, "-m", "slurmdag", "compile", str(workflow), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compile_output_is_private_and_never_written_through_a_symlink(write, tmp_path):
    path = write("name: w\nallocations:\n  - {name: a, entrypoint: x, env: {TOKEN: s3cret}}\n")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.sbatch").symlink_to(victim)
    (out / "plan.json").symlink_to(victim)
    done = _compile_cli(path, out)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n"
    for name, mode in (("a.sbatch", 0o700), ("plan.json", 0o600)):
        st = (out / name).lstat()
        assert stat.S_ISREG(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) & ~mode == 0, oct(st.st_mode)  # never more than 0700 / 0600
    assert "s3cret" in (out / "a.sbatch").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["a.sbatch", "plan.json"]  # no temporary file left


def test_compile_refuses_an_output_dir_that_is_a_symlink(write, tmp_path):
    path = write("name: w\nallocations:\n  - {name: a, entrypoint: x}\n")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    done = _compile_cli(path, tmp_path / "link")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{tmp_path / 'link'}: is a symbolic link")
    assert list(target.iterdir()) == []


def test_a_new_output_dir_is_private(write, tmp_path):
    path = write("name: w\nallocations:\n  - {name: a, entrypoint: x}\n")
    done = _compile_cli(path, tmp_path / "new" / "out")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "new" / "out").stat().st_mode) & 0o077 == 0


def test_a_script_bound_for_submission_is_checked_too():
    from slurmdag.compiler import render

    w = Workflow("w")
    w.allocation("a", "true", nodes=2, partition="debug")
    job = w.compile().job("a")
    bound = render.bind_script(job, render.Submission("0123abcd", log_dir="/tmp/logs"))
    assert "#SBATCH --output=/tmp/logs/a_%j.out\n" in bound
    with pytest.raises(InternalError) as info:
        render.bind_script(job, render.Submission("0123abcd", log_dir="/tmp/logs\n#x"))
    assert "the batch script written for DAG 0123abcd for 'a' is not what the plan says" in str(info.value)


@pytest.mark.parametrize("value", ["9" * 5000, "[" * 100_000], ids=["5000-digits", "100000-deep"])
def test_a_hostile_set_value_is_read_as_text(write, value):
    path = write(
        "name: w\nparams: {p: 1}\nallocations:\n  - {name: a, entrypoint: 'echo $P', env: {P: '{{ params.p }}'}}\n"
    )
    plan = compile_file(path, overrides={"p": value})
    assert plan.params["p"] == value
    rc, err, _ = validate(path, "--set", f"p={value}")
    assert rc == 0 and "Traceback" not in err, err


def test_a_script_ending_in_a_carriage_return_is_refused(write, tmp_path):
    (tmp_path / "job.sh").write_bytes(b"#!/bin/bash\ntrue\r")
    (p,) = refused_quickly(
        lambda: compile_file(write("name: w\nallocations:\n  - {name: a, script: job.sh}\n"))
    ).problems
    assert p.message == "script 'job.sh' ends with a carriage return"


def test_quoted_values_may_end_in_a_carriage_return():
    w = Workflow("w", params={"p": "x\r"})
    w.allocation("a", "true", env={"V": "x\r", "W": "{{ params.p }}"}, matrix={"m": ["y\r"]})
    script = w.compile().job("a").script
    assert "\r\n" not in script and "export V='x\r'\n" in script
