"""Explicit parameter sets: `matrix: {include: [...], exclude: [...]}` (docs/workflow-format.md, "Parameter sets").
Every combination left becomes one array task; every mistake is reported at its own line and column."""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_file
from slurmdag.model.errors import InputError

from .conftest import EXAMPLES, problem_lines


def _rows(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if ") export SLURMDAG_MATRIX_" in line]


def test_the_example_runs_exactly_the_hand_picked_combinations():
    plan = compile_file(EXAMPLES / "param-sets.yaml")
    train, grid = plan.job("train"), plan.job("grid")
    assert (train.array, train.tasks) == ("0-2", 3)
    assert _rows(train.script) == [
        "0) export SLURMDAG_MATRIX_LR=0.1 SLURMDAG_MATRIX_BATCH=16 ;;",
        "1) export SLURMDAG_MATRIX_LR=0.01 SLURMDAG_MATRIX_BATCH=64 ;;",
        "2) export SLURMDAG_MATRIX_LR=0.0001 SLURMDAG_MATRIX_BATCH=128 ;;",
    ]
    # the grid minus what `exclude` names (product order kept), then the `include` entries
    assert (grid.array, grid.tasks) == ("0-4", 5)
    assert [r.split(") ")[1] for r in _rows(grid.script)] == [
        f"export SLURMDAG_MATRIX_LR={lr} SLURMDAG_MATRIX_BATCH={b} ;;"
        for lr, b in (("0.1", 16), ("0.1", 64), ("0.01", 16), ("0.01", 64), ("0.0001", 128))
    ]


def test_plain_matrix_is_unchanged(write):
    plan = compile_file(write("name: w\nallocations:\n  - {name: a, entrypoint: x, matrix: {a: [1, 2], b: [x, y]}}\n"))
    assert [r.split(") ")[1] for r in _rows(plan.job("a").script)] == [
        f"export SLURMDAG_MATRIX_A={a} SLURMDAG_MATRIX_B={b} ;;" for a in (1, 2) for b in "xy"
    ]


def test_python_api_takes_include_too():
    from slurmdag.compiler.api import Workflow

    w = Workflow("w")
    w.allocation("a", "echo", matrix={"include": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]})
    assert w.compile().job("a").tasks == 2


CASES = {
    "include-unknown-key": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1, 2]
              include:
                - {lr: 3, bs: 4}
        """,
        ["wf.yaml:8:19: 'bs' is not a key of the matrix (lr)"],
    ),
    "include-missing-key": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1, 2]
              bs: [1]
              include:
                - {lr: 3}
        """,
        ["wf.yaml:9:11: this `include` entry does not set bs"],
    ),
    "include-duplicate": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1, 2]
              include:
                - {lr: 2}
        """,
        ["wf.yaml:8:11: this `include` entry is already a combination of the matrix"],
    ),
    "include-only-keys-differ": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              include:
                - {lr: 1, bs: 2}
                - {lr: 1}
                - {lr: 2, seed: 3}
        """,
        [
            "wf.yaml:8:11: this `include` entry does not set bs",
            "wf.yaml:9:19: 'seed' is not a key of the matrix (lr, bs)",
        ],
    ),
    "exclude-matches-nothing": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1, 2]
              exclude:
                - {lr: 3}
        """,
        ["wf.yaml:8:11: this `exclude` entry matches no combination of the matrix"],
    ),
    "exclude-everything": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1]
              exclude:
                - {lr: 1}
        """,
        ["wf.yaml:6:7: the matrix has no combinations left"],
    ),
    "exclude-without-lists": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              exclude:
                - {lr: 1}
        """,
        ["wf.yaml:6:7: `exclude` needs value lists to exclude from"],
    ),
    "include-not-a-list": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              include: {lr: 1}
        """,
        ["wf.yaml:6:16: `matrix.include` must be a non-empty list of {key: value} mappings, not a mapping"],
    ),
    "include-entry-not-a-mapping": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1]
              include: [2]
        """,
        ["wf.yaml:7:17: each `include` entry must be a mapping of matrix key -> value, not an integer"],
    ),
    "include-value-not-a-scalar": (
        """
        name: w
        allocations:
          - name: a
            entrypoint: x
            matrix:
              lr: [1]
              include:
                - {lr: [2]}
        """,
        ["wf.yaml:8:16: expected a string, number or boolean, not a list"],
    ),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_parameter_set_mistakes_are_located(write, text, expected):
    with pytest.raises(InputError) as err:
        compile_file(write(text))
    assert [line.split("/")[-1] for line in problem_lines(err.value)] == expected
