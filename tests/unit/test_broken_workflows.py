"""Broken workflows: every one must give exact `file:line:col: message` problems (all of them), never a traceback."""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_file
from slurmdag.model.errors import InputError

from .conftest import problem_lines

# (id, workflow text, expected problem lines with {f} for the file path, extra compile_file kwargs)
CASES = [
    (
        "yaml-syntax-unclosed-flow",
        "name: x\nallocations: [a,\n",
        ["{f}:3:1: invalid YAML: expected the node content, but found '<stream end>'"],
        {},
    ),
    (
        "yaml-syntax-colon-in-value",
        "name: x\nallocations:\n  - name: a\n    entrypoint: echo a: b\n",
        ["{f}:4:23: invalid YAML: mapping values are not allowed here"],
        {},
    ),
    (
        "tab-indentation",
        "name: x\nallocations:\n\t- name: a\n",
        ["{f}:3:1: invalid YAML: tab character used for indentation"],
        {},
    ),
    ("empty-file", "", ["{f}:1:1: the workflow file is empty"], {}),
    ("comments-only", "# nothing here\n", ["{f}:1:1: the workflow file is empty"], {}),
    ("nul-character", "name: x\x00\n", ["{f}:1:8: invalid YAML: unacceptable character #x0000"], {}),
    ("list-at-top", "- name: a\n  entrypoint: x\n", ["{f}:1:1: a workflow must be a mapping, not a list"], {}),
    ("scalar-at-top", "just text\n", ["{f}:1:1: a workflow must be a mapping, not a string"], {}),
    (
        "allocations-is-a-mapping",
        "name: x\nallocations:\n  a: {entrypoint: x}\n",
        ["{f}:3:3: `allocations` must be a list, not a mapping"],
        {},
    ),
    ("allocations-empty", "name: x\nallocations: []\n", ["{f}:2:14: `allocations` is empty"], {}),
    (
        "allocation-is-a-string",
        "name: x\nallocations:\n  - just-a-name\n",
        ["{f}:3:5: allocation #1 must be a mapping, not a string"],
        {},
    ),
    (
        "duplicate-key",
        "name: x\nallocations:\n  - name: a\n    entrypoint: one\n    entrypoint: two\n",
        ["{f}:5:5: duplicate key 'entrypoint'"],
        {},
    ),
    (
        "missing-name",
        "allocations:\n  - name: a\n    entrypoint: x\n",
        ["{f}:1:1: missing required key 'name'"],
        {},
    ),
    (
        "missing-allocations-and-typo",
        "name: x\nallocation:\n  - name: a\n",
        ["{f}:2:1: unknown top-level key 'allocation'", "{f}:1:1: missing required key 'allocations'"],
        {},
    ),
    (
        "unknown-allocation-key",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    nodez: 2\n",
        ["{f}:5:5: unknown key 'nodez' in allocation 'a'"],
        {},
    ),
    (
        "nodes-not-an-integer",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    nodes: many\n",
        ["{f}:5:12: `nodes` must be an integer, not a string"],
        {},
    ),
    (
        "entrypoint-not-a-string",
        "name: x\nallocations:\n  - name: a\n    entrypoint: 42\n",
        ["{f}:4:17: `entrypoint` must be a string, not an integer"],
        {},
    ),
    (
        "bad-walltime",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    walltime: 3x\n",
        ["{f}:5:15: invalid walltime '3x': not one of the accepted forms"],
        {},
    ),
    (
        "walltime-out-of-range",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    walltime: '1:61:00'\n",
        [
            "{f}:5:15: invalid walltime '1:61:00': walltime fields out of range "
            "(hours 0-23 after a day count, minutes and seconds 0-59)"
        ],
        {},
    ),
    (
        "bad-walltime-in-defaults",
        "name: x\ndefaults:\n  walltime: 0\nallocations:\n  - name: a\n    entrypoint: x\n",
        ["{f}:3:13: invalid walltime 0: walltime must be longer than zero"],
        {},
    ),
    (
        "bad-condition",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n  - name: b\n    entrypoint: x\n"
        "    depends_on:\n      - a: sucess\n",
        ["{f}:8:12: unknown condition 'sucess' for 'a'"],
        {},
    ),
    (
        "depends-on-not-a-list",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    depends_on: 5\n",
        ["{f}:5:17: `depends_on` must be a list of allocation names, not an integer"],
        {},
    ),
    (
        "unknown-reference",
        "name: x\nallocations:\n  - name: preprocess\n    entrypoint: x\n  - name: train\n    entrypoint: x\n"
        "    depends_on: [preprocesss]\n",
        ["{f}:7:18: unknown allocation 'preprocesss' in depends_on of 'train'"],
        {},
    ),
    (
        "duplicate-name",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n  - name: a\n    entrypoint: y\n",
        ["{f}:5:11: duplicate allocation name 'a'"],
        {},
    ),
    (
        "self-dependency",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    depends_on: [a]\n",
        ["{f}:5:18: allocation 'a' depends on itself"],
        {},
    ),
    (
        "cycle",
        "name: x\nallocations:\n"
        "  - name: a\n    entrypoint: x\n    depends_on: [c]\n"
        "  - name: b\n    entrypoint: x\n    depends_on: [a]\n"
        "  - name: c\n    entrypoint: x\n    depends_on: [{b: any}]\n",
        ["{f}:5:18: dependency cycle: a -> b -> c -> a"],
        {},
    ),
    (
        "two-cycles-reported-together",
        "name: x\nallocations:\n"
        "  - {name: a, entrypoint: x, depends_on: [b]}\n"
        "  - {name: b, entrypoint: x, depends_on: [a]}\n"
        "  - {name: c, entrypoint: x, depends_on: [d]}\n"
        "  - {name: d, entrypoint: x, depends_on: [c]}\n",
        ["{f}:3:43: dependency cycle: a -> b -> a", "{f}:5:43: dependency cycle: c -> d -> c"],
        {},
    ),
    (
        "corresponding-size-mismatch",
        "name: x\nallocations:\n  - name: shards\n    entrypoint: x\n    tasks: 8\n"
        "  - name: post\n    entrypoint: x\n    tasks: 4\n    depends_on: [{shards: corresponding}]\n",
        ["{f}:9:19: `corresponding` needs task groups of the same size: 'post' has 4 tasks, 'shards' has 8"],
        {},
    ),
    (
        "corresponding-on-single-job",
        "name: x\nallocations:\n  - name: prep\n    entrypoint: x\n"
        "  - name: post\n    entrypoint: x\n    tasks: 4\n    depends_on: [{prep: corresponding}]\n",
        ["{f}:8:19: `corresponding` between 'post' and 'prep' needs two task groups; 'prep' is not one"],
        {},
    ),
    (
        "over-the-allocation-limit",
        "name: x\nallocations:\n  - {name: a, entrypoint: x}\n  - {name: b, entrypoint: x}\n"
        "  - {name: c, entrypoint: x}\n",
        ["{f}:5:5: the workflow has more than 2 allocations"],  # refused where the limit is passed
        {"max_allocations": 2},
    ),
    (
        "undefined-param",
        "name: x\nparams: {lr: 0.1}\nallocations:\n  - name: a\n    entrypoint: train --lr={{ params.lrr }}\n",
        ["{f}:5:17: `entrypoint` uses undefined param 'lrr'"],
        {},
    ),
    (
        "undefined-param-in-env",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    env: {LR: '{{ params.lr }}'}\n",
        ["{f}:5:15: `env.LR` uses undefined param 'lr'"],
        {},
    ),
    (
        "unknown-set-override",
        "name: x\nparams: {lr: 0.1}\nallocations:\n  - {name: a, entrypoint: x}\n",
        ["--set: unknown param 'lrr'"],
        {"overrides": {"lrr": "1"}},
    ),
    (
        "owned-sbatch-flag",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    sbatch: ['--mail-type=END', "
        "'--dependency=afterok:1']\n",
        ["{f}:5:33: sbatch flag --dependency is set by slurmdag and cannot be given in `sbatch`"],
        {},
    ),
    (
        "owned-sbatch-flag-abbreviated",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    sbatch: ['--dep=afterok:1']\n",
        ["{f}:5:14: sbatch flag --dependency is set by slurmdag and cannot be given in `sbatch`"],
        {},
    ),
    (
        "owned-sbatch-short-flag",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    sbatch: ['-J other']\n",
        ["{f}:5:14: sbatch flag '-J other' (--job-name) is set by slurmdag"],
        {},
    ),
    (
        "sbatch-flag-duplicates-a-key",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    sbatch: ['--time=10']\n",
        ["{f}:5:14: sbatch flag --time duplicates the `walltime` key"],
        {},
    ),
    (
        "bad-name-chars",
        "name: x\nallocations:\n  - name: 'a b'\n    entrypoint: x\n",
        ["{f}:3:11: invalid allocation name 'a b'"],
        {},
    ),
    (
        "bad-workflow-name",
        "name: -pipeline\nallocations:\n  - {name: a, entrypoint: x}\n",
        ["{f}:1:7: invalid workflow name '-pipeline'"],
        {},
    ),
    (
        "newline-in-partition",
        'name: x\nallocations:\n  - name: a\n    entrypoint: x\n    partition: "debug\\n#SBATCH --hold"\n',
        ["{f}:5:16: `partition` contains a newline, which cannot appear in an #SBATCH directive"],
        {},
    ),
    (
        "space-in-account",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    account: 'proj --dependency=afterok:1'\n",
        ["{f}:5:14: `account` contains a space, which cannot appear in an #SBATCH directive"],
        {},
    ),
    (
        "bad-memory",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    mem: lots\n",
        ["{f}:5:10: invalid `mem`: invalid memory size 'lots'"],
        {},
    ),
    (
        "bad-array-throttle",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    array: '0-99%0'\n",
        ["{f}:5:12: invalid array '0-99%0': invalid throttle '%0': must be %N with N >= 1"],
        {},
    ),
    (
        "tasks-and-array",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    tasks: 4\n    array: '0-3'\n",
        ["{f}:6:5: `tasks` and `array` cannot be used together in allocation 'a'"],
        {},
    ),
    (
        "no-entrypoint",
        "name: x\nallocations:\n  - name: a\n    nodes: 2\n",
        ["{f}:3:5: allocation 'a' needs an `entrypoint` or a `script`"],
        {},
    ),
    (
        "script-not-found",
        "name: x\nallocations:\n  - name: a\n    script: jobs/missing.sbatch\n",
        ["{f}:4:13: script 'jobs/missing.sbatch' not found"],
        {},
    ),
    (
        "bad-env-name",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    env: {1X: a}\n",
        ["{f}:5:11: invalid environment variable name '1X'"],
        {},
    ),
    (
        "merge-key",
        "name: x\nbase: &b {entrypoint: x}\nallocations:\n  - <<: *b\n    name: a\n",
        [
            "{f}:4:5: YAML merge keys ('<<') are not supported",
        ],
        {},
    ),
    (
        "leading-zero-number",
        "name: x\nallocations:\n  - name: a\n    entrypoint: x\n    matrix: {seed: [1, 010]}\n",
        ["{f}:5:24: ambiguous number 010: YAML 1.1 reads it as octal 8, YAML 1.2 as 10"],
        {},
    ),
    (
        "name-in-defaults",
        "name: x\ndefaults: {name: a}\nallocations:\n  - {name: a, entrypoint: x}\n",
        ["{f}:2:12: `name` cannot be set in defaults"],
        {},
    ),
    (
        "corresponding-in-depends-on-any",
        "name: x\nallocations:\n  - {name: a, entrypoint: x, tasks: 2}\n  - {name: b, entrypoint: x, tasks: 2}\n"
        "  - {name: c, entrypoint: x, tasks: 2, depends_on_any: [{a: corresponding}, b]}\n",
        ["{f}:5:58: `corresponding` cannot be used in depends_on_any"],
        {},
    ),
    (
        "every-problem-in-one-report",
        "name: x\nallocations:\n"
        "  - name: a\n    entrypoint: x\n    walltime: soon\n    depends_on: [b]\n"
        "  - name: b\n    entrypoint: x\n    depends_on: [a]\n    gpu: 1\n"
        "  - name: c\n    entrypoint: x\n    depends_on: [zz]\n",
        [
            "{f}:5:15: invalid walltime 'soon': not one of the accepted forms",
            "{f}:10:5: unknown key 'gpu' in allocation 'b'",
            "{f}:13:18: unknown allocation 'zz' in depends_on of 'c'",
            "{f}:6:18: dependency cycle: a -> b -> a",
        ],
        {},
    ),
]


@pytest.mark.parametrize("text,expected,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_workflow_reports_exact_problems(tmp_path, text, expected, kwargs):
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        compile_file(str(path), **kwargs)
    assert problem_lines(info.value) == [e.format(f=path) for e in expected]


def test_there_are_at_least_25_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 25


def _problems(write, text, **kwargs):
    with pytest.raises(InputError) as info:
        compile_file(str(write(text)), **kwargs)
    return info.value.problems


def test_unknown_key_hint_suggests_the_close_key(write):
    (p,) = _problems(write, "name: x\nallocations:\n  - {name: a, entrypoint: x, wall_time: 5}\n")
    assert p.message == "unknown key 'wall_time' in allocation 'a'"
    assert p.hint == "did you mean 'walltime'?"


def test_unknown_reference_hint_suggests_the_close_name(write):
    (p,) = _problems(
        write,
        "name: x\nallocations:\n  - {name: train, entrypoint: x}\n  - {name: b, entrypoint: x, depends_on: [trian]}\n",
    )
    assert p.hint == "did you mean 'train'?"


def test_bad_walltime_hint_lists_the_accepted_forms(write):
    (p,) = _problems(write, "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 2 hours}\n")
    assert "HH:MM:SS" in p.hint and "1d12h" in p.hint


def test_unknown_set_param_hint_lists_declared_params(write):
    (p,) = _problems(
        write,
        "name: x\nparams: {lr: 1, epochs: 2}\nallocations:\n  - {name: a, entrypoint: x}\n",
        overrides={"batch": "3"},
    )
    assert p.hint == "the workflow's params: lr, epochs"


def test_duplicate_key_hint_points_at_the_first(write):
    (p,) = _problems(write, "name: x\nname: y\nallocations:\n  - {name: a, entrypoint: x}\n")
    assert (p.line, p.col, p.hint) == (2, 1, "first defined at line 1, column 1")


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        compile_file(str(tmp_path / "nope.yaml"))
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file\n  hint: check the path of the workflow file"


def test_report_is_capped_with_and_n_more(write):
    allocs = "".join(f"  - {{name: a{i}, entrypoint: x, nodes: zero}}\n" for i in range(60))
    with pytest.raises(InputError) as info:
        compile_file(str(write("name: x\nallocations:\n" + allocs)))
    assert len(info.value.problems) == 60
    assert str(info.value).splitlines()[-1] == "... and 10 more"
