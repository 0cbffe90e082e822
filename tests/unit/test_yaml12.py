"""Workflows are read by YAML 1.2 rules: nothing PyYAML's YAML 1.1 reading would change may change meaning silently.

Each case either means what a YAML 1.2 reader says or is refused with a located error and a hint to quote it.
"""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import InputError
from tests.unit.conftest import dedent, problem_lines


def _job(text: str, name: str = "a"):
    return compile_text(dedent(text), "wf.yaml").job(name)


def _refused(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        compile_text(dedent(text), "wf.yaml")
    return info.value


def test_walltime_clock_is_one_hour_not_sixty():
    # YAML 1.1: the sexagesimal integer 3600, read as minutes = 60 hours
    job = _job("name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 1:00:00}\n")
    assert job.walltime == 3600
    assert "#SBATCH --time=01:00:00" in job.script


def test_walltime_mm_ss_is_what_sbatch_reads():
    # YAML 1.1: 630 minutes (10.5 hours); YAML 1.2: the text "10:30", which sbatch reads as minutes:seconds
    job = _job("name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 10:30}\n")
    assert job.walltime == 630


def test_leading_zero_number_is_refused_with_a_located_hint():
    err = _refused(
        """
        name: x
        allocations:
          - name: a
            entrypoint: run $SLURMDAG_MATRIX_SEED
            matrix:
              seed: [7, 010]
        """
    )
    assert problem_lines(err) == ["wf.yaml:6:17: ambiguous number 010: YAML 1.1 reads it as octal 8, YAML 1.2 as 10"]
    assert err.problems[0].hint is not None and '"010"' in err.problems[0].hint


def test_quoted_leading_zero_keeps_its_text():
    job = _job('name: x\nallocations:\n  - {name: a, entrypoint: x, matrix: {seed: ["010", "007"]}}\n')
    assert "export SLURMDAG_MATRIX_SEED=010 ;;" in job.script and "SLURMDAG_MATRIX_SEED=007" in job.script


def test_yes_is_text_in_env():
    # YAML 1.1 reads `yes` as true, which would have exported VERBOSE=true
    job = _job("name: x\nallocations:\n  - {name: a, entrypoint: x, env: {VERBOSE: yes, QUIET: off}}\n")
    assert "export VERBOSE=yes" in job.script and "export QUIET=off" in job.script


def test_yes_where_a_boolean_is_wanted_is_refused_with_a_hint():
    err = _refused("name: x\nallocations:\n  - name: a\n    entrypoint: x\n    exclusive: yes\n")
    assert problem_lines(err) == ['wf.yaml:5:16: `exclusive` must be true, false, "user", "mcs" or "topo"']
    assert err.problems[0].hint is not None and "true" in err.problems[0].hint


def test_yes_as_a_mapping_key_stays_a_string():
    job = _job("name: x\nallocations:\n  - name: a\n    entrypoint: x\n    env: {on: 1}\n")
    assert "export on=1" in job.script


def test_core_schema_numbers_and_booleans_still_work():
    job = _job(
        "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 90, nodes: 0x2, exclusive: true,"
        " matrix: {lr: [0.1, 1e-3], flag: [false]}}\n"
    )
    assert job.walltime == 5400 and job.options["nodes"] == "2" and "exclusive" in job.options
    assert "SLURMDAG_MATRIX_LR=0.1" in job.script and "SLURMDAG_MATRIX_LR=0.001" in job.script


def test_set_override_reads_values_like_the_file():
    text = "name: x\nparams: {seed: 1}\nallocations:\n  - {name: a, entrypoint: 'run {{ params.seed }}'}\n"
    for given, shown in (("010", "run 010"), ("yes", "run yes"), ("1:00:00", "run 1:00:00"), ("0.5", "run 0.5")):
        job = compile_text(text, "wf.yaml", overrides={"seed": given}).job("a")
        assert shown in job.script, given
