"""A workflow's `sbatch:` flags are read the way sbatch reads them (issue 17, defect 2): the same option table as
batch scripts, aliases and unique prefixes resolved, client-only and owned options refused, with file:line:col."""

from __future__ import annotations

import subprocess
import sys

import pytest

from slurmdag.compiler.spec import parse_workflow
from slurmdag.model.errors import InputError
from slurmdag.model.sbatch_options import Token, check_long_flag, lookup_long, parse_args


def workflow(flags: str, keys: str = "") -> str:
    return f"name: x\nallocations:\n  - name: a\n    entrypoint: 'true'\n{keys}    sbatch: [{flags}]\n"


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_workflow(text, "wf.yaml")
    return [f"{p.line}:{p.col}: {p.message} | {p.hint}" for p in info.value.problems]


@pytest.mark.parametrize(
    "flag, needle",
    [
        ("--wait", "--wait only changes how the sbatch command behaves"),
        ("--test-only", "--test-only only changes how the sbatch command behaves"),
        ("--test", "--test (--test-only) only changes"),  # a unique prefix is the option itself
        ("-W", "sbatch flag '-W' (--wait) only changes"),
        ("--verbose", "--verbose only changes"),
        ("--usage", "--usage only changes"),
        ("--DEPENDENCY=afterok:1", "unknown sbatch option --DEPENDENCY | did you mean --dependency?"),
        ("--Partition=debug", "unknown sbatch option --Partition | did you mean --partition?"),
        ("--workdir=/tmp", "unknown sbatch option --workdir | did you mean --chdir?"),
        ("--partiton=debug", "unknown sbatch option --partiton | did you mean --partition?"),
        ("--dep=afterok:1", "--dependency is set by slurmdag"),
        ("--kill=yes", "--kill-on-invalid-dep is set by slurmdag"),
        ("--clust=a", "ambiguous sbatch option --clust: it could be --cluster, --cluster-constraint, --clusters"),
        ("--mem-per=1G", "ambiguous sbatch option --mem-per"),
        ("--contiguous=yes", "--contiguous takes no value"),
        ("--mail-type", "--mail-type needs a value"),
        ("--tasks=2", "--tasks (--ntasks-per-node) duplicates the `ntasks_per_node` key"),
        ("--time=10", "--time duplicates the `walltime` key"),
    ],
)
def test_refused_flags_are_located_with_a_hint(flag, needle):
    found = problems(workflow(f"'{flag}'"))
    assert len(found) == 1 and needle in found[0], found
    assert found[0].startswith("5:14: ")


def test_an_abbreviation_of_a_key_owned_option_beside_its_key():
    found = problems(workflow("'--partitio=x'", keys="    partition: debug\n"))
    assert found == [
        "6:14: sbatch flag --partitio (--partition) duplicates the `partition` key | set `partition:` instead"
    ]


def test_aliases_and_prefixes_are_stored_by_their_full_name():
    spec = parse_workflow(workflow("'--cluster=c1', '--mail-t=END', '--contiguous', '--nice=5'"), "wf.yaml")
    assert spec.allocations[0].options == {"clusters": "c1", "mail-type": "END", "contiguous": None, "nice": "5"}


def test_the_same_option_twice_under_two_spellings_is_refused():
    found = problems(workflow("'--mail-type=END', '--mail-t=FAIL'"))
    assert found and "given twice" in found[0]


def test_an_option_sbatch_does_not_have_is_kept_for_a_site_plugin_with_a_warning():
    spec = parse_workflow(workflow("'--container-image=ubuntu'"), "wf.yaml")
    assert spec.allocations[0].options == {"container-image": "ubuntu"}
    assert [w.message for w in spec.warnings] == ["--container-image is not an sbatch 22.05 option"]
    assert (spec.warnings[0].line, spec.warnings[0].col) == (5, 14)


def test_the_cli_exits_2_without_traceback_and_nothing_else(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(workflow("'--wait'"))
    r = subprocess.run([sys.executable, "-m", "slurmdag", "validate", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{path}:5:14: sbatch flag --wait only changes how the sbatch command behaves" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "written, long, how",
    [
        ("cluster", "clusters", "alias"),
        ("tasks-per-node", "ntasks-per-node", "alias"),
        ("tasks", "ntasks-per-node", "prefix"),
        ("part", "partition", "prefix"),
        ("clust", None, "ambiguous"),
        ("workdir", None, "unknown"),
        ("nodes", "nodes", "exact"),
    ],
)
def test_lookup_like_getopt_long(written, long, how):
    found = lookup_long(written)
    assert (found.option.long if found.option else None, found.how) == (long, how)


def test_script_reader_accepts_the_cluster_alias_that_was_refused():
    opts, _, issues = parse_args([Token("--cluster=c1", 1, 1), Token("--clust=x", 2, 1)], stop_at_operand=False)
    assert [(o.name, o.value) for o in opts if o.known] == [("clusters", "c1")]
    assert [i.message for i in issues] == [
        "ambiguous sbatch option --clust: it could be --cluster, --cluster-constraint, --clusters"
    ]


def test_check_long_flag_accepts_a_plain_option():
    assert check_long_flag("mail-type", "END") == (lookup_long("mail-type").option, None)


# ---------------------------------------------------------------- --comment is the user's (issue 20)


def test_a_comment_flag_is_kept_and_submit_does_not_replace_it():
    from slurmdag.compiler.render import Submission
    from slurmdag.model.plan import PlannedJob
    from slurmdag.runs.submit import job_options

    spec = parse_workflow(workflow("'--comment=96:00:00'"), "wf.yaml")
    assert spec.allocations[0].options == {"comment": "96:00:00"}
    dag = Submission("0123abcd")
    mine = job_options(PlannedJob("a", "allocation", {"comment": "96:00:00"}, ""), dag, "afterok:1")
    assert [o for o in mine if o.startswith("--comment")] == ["--comment=96:00:00"]
    theirs = job_options(PlannedJob("a", "allocation", {}, ""), dag, "afterok:1")
    assert [o for o in theirs if o.startswith("--comment")] == ["--comment=slurmdag:0123abcd:a"]


def test_retries_and_an_own_comment_cannot_share_the_comment():
    found = problems(workflow("'--comment=mine'", keys="    retries: 2\n"))
    assert found == [
        "5:14: allocation 'a' sets its own --comment, and `retries` notes each attempt in the job's comment"
        " | keep one of them: your comment, or slurmdag's attempt notes"
    ]


def test_a_submitted_script_keeps_the_users_comment_in_its_block():
    from slurmdag.compiler import render
    from slurmdag.model.plan import PlannedJob

    job = PlannedJob("a", "allocation", {"comment": "96:00:00"}, "#!/bin/bash\ntrue\n")
    bound = dict(render.sbatch_options(job, render.Submission("0123abcd")))
    assert bound["comment"] == "96:00:00" and bound["job-name"] == "sd-0123abcd-a"
    plain = dict(render.sbatch_options(PlannedJob("a", "allocation", {}, ""), render.Submission("0123abcd")))
    assert plain["comment"] == "slurmdag:0123abcd:a"
