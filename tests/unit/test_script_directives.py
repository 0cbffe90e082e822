"""The #SBATCH reader against sbatch's documented rules, and the merge with workflow options."""

from pathlib import Path

import pytest

from slurmdag.compiler.script_directives import read_directives
from slurmdag.compiler.script_merge import directive_lines, merge, rebuild_script
from slurmdag.model.sbatch_options import Token, parse_args, quote_directive_value, resolve_long

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "batch-scripts"


def read(text: str):
    return read_directives(text, "job.sh")


def test_short_long_attached_and_separate_forms():
    d = read("#!/bin/bash\n#SBATCH -N2 -n 4\n#SBATCH --time=10 --partition debug\n#SBATCH -c1\necho hi\n")
    assert d.effective() == {"nodes": "2", "ntasks": "4", "time": "10", "partition": "debug", "cpus-per-task": "1"}
    assert [(o.name, o.line, o.col) for o in d.directives] == [
        ("nodes", 2, 9),
        ("ntasks", 2, 13),
        ("time", 3, 9),
        ("partition", 3, 19),
        ("cpus-per-task", 4, 9),
    ]
    assert d.problems == []


def test_block_stops_at_first_command_and_reports_late_directives():
    text = "#!/bin/bash\n\n# note\n#SBATCH -N 1\n  #SBATCH -N 9\nhostname\n#SBATCH -N 3\n"
    d = read(text)
    assert d.effective() == {"nodes": "1"}
    assert d.body == "hostname\n#SBATCH -N 3\n"
    assert d.body_line == 6
    assert [(n.line, "ignores" in n.message) for n in d.notes] == [(7, True)]


def test_quotes_escapes_and_inline_comments():
    text = (
        "#!/bin/bash\n"
        "#SBATCH --comment=\"a # b\" -J 'x y'   # trailing comment -N 5\n"
        "#SBATCH --output=out\\ file.%j # c\n"
        "#SBATCH --error=e.txt#glued comment\n"
        "true\n"
    )
    d = read(text)
    assert d.effective() == {"comment": "a # b", "job-name": "x y", "output": "out file.%j", "error": "e.txt"}


def test_unmatched_quote_unknown_and_stray_words_are_problems():
    d = read('#!/bin/bash\n#SBATCH --comment="oops\n#SBATCH --frobnicate=1 -Z\n#SBATCH stray\ntrue\n')
    msgs = [(p.line, p.message) for p in d.problems]
    assert any(line == 2 and "unmatched" in m for line, m in msgs)
    # an option the 22.05 table does not know (a newer Slurm's, a plugin's) is a warning: the cluster's sbatch decides
    assert any(p.line == 3 and "--frobnicate" in p.message for p in d.notes)
    assert any(line == 3 and "-Z" in m for line, m in msgs)
    assert any(line == 4 and "stray" in m for line, m in msgs)


def test_owned_directives_are_reported_never_silent():
    d = read("#!/bin/bash\n#SBATCH -d afterok:1 --hold\n#SBATCH -J name --array=0-3 --comment=c --parsable\ntrue\n")
    errors = {p.message.split(":")[0] for p in d.problems}
    assert errors == {"--dependency=afterok", "--hold"}
    notes = " ".join(n.message for n in d.notes)
    for flag in ("--job-name=name", "--array=0-3", "--parsable"):
        assert flag in notes
    assert "--comment" not in notes  # the user's comment is applied as written
    assert d.options() == {"comment": "c"}
    assert d.array == "0-3" and d.job_name == "name"


def test_no_shebang_and_dos_line_breaks_are_problems():
    d = read("#SBATCH -N 1\r\necho\r\n")
    assert {p.line for p in d.problems} == {1}
    assert len(d.problems) == 2


def test_last_occurrence_wins_like_getopt():
    d = read("#!/bin/bash\n#SBATCH -N 1\n#SBATCH --nodes=2\ntrue\n")
    assert d.effective() == {"nodes": "2"}


def test_option_split_across_lines_is_one_argv():
    d = read("#!/bin/bash\n#SBATCH --nodes\n#SBATCH 2\ntrue\n")
    assert d.effective() == {"nodes": "2"}


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("part", "partition"),
        ("mem", "mem"),
        ("ntasks-per-n", "ntasks-per-node"),
        ("tasks-per-node", "ntasks-per-node"),
        ("n", None),
        ("mem-per", None),
        ("nope", None),
    ],
)
def test_long_prefixes_like_getopt_long(prefix, expected):
    opt = resolve_long(prefix)
    assert (opt.long if opt else None) == expected


def test_optional_values_only_attached():
    opts, operands, issues = parse_args([Token(t, 1, 1) for t in ["--exclusive", "--nice=5", "-k", "script.sh", "-N"]])
    assert [(o.name, o.value) for o in opts] == [("exclusive", None), ("nice", "5"), ("no-kill", None)]
    assert [t.text for t in operands] == ["script.sh", "-N"]
    assert issues == []


def test_clustered_short_flags():
    opts, _, _ = parse_args([Token("-HQN3", 1, 1)])
    assert [(o.name, o.value) for o in opts] == [("hold", None), ("quiet", None), ("nodes", "3")]


def test_every_corpus_script_parses_and_round_trips_through_rebuild():
    scripts = sorted(CORPUS.glob("*.sbatch"))
    real = sorted((CORPUS / "real").glob("*.sbatch"))
    assert len(scripts) >= 15 and len(real) >= 30
    for path in scripts + real:
        d = read_directives(path.read_text(), str(path))
        assert d.directives, path
        if path.name.startswith("r20_"):  # `--mail-user=<Your E-mail>`: sbatch refuses it too ("Invalid directive")
            assert [p.message for p in d.problems] == ["not an option: 'E-mail>'"]
            continue
        assert not [p for p in d.problems], (path, d.problems)
        again = read_directives(rebuild_script(d, d.effective()), str(path))
        assert again.effective() == d.effective(), path
        assert again.body == d.body


@pytest.mark.parametrize("value", ["plain", "two words", 'say "hi"', "a#b", "back\\slash", "it's", ""])
def test_quoted_values_come_back_unchanged(value):
    d = read(f"#!/bin/bash\n#SBATCH --comment={quote_directive_value(value)}\ntrue\n")
    assert d.effective() == {"comment": value}


def test_merge_workflow_wins_and_records_origins():
    d = read("#!/bin/bash\n#SBATCH -N 2\n#SBATCH --mem-per-cpu=100\n#SBATCH -t 10 --array=0-3 -J old\nrun\n")
    m = merge(d, {"nodes": "4", "mem": "1G", "partition": "debug"})
    assert m.options == {"mem": "1G", "nodes": "4", "partition": "debug", "time": "10"}
    assert m.array == "0-3" and m.script_job_name == "old"
    by = {(o.name, o.source): o for o in m.origins}
    assert by[("nodes", "script")].status == "overridden" and by[("nodes", "script")].line == 2
    assert by[("mem-per-cpu", "script")].status == "replaced" and by[("mem-per-cpu", "script")].by == "mem"
    assert by[("time", "script")].status == "applied"
    assert any("overridden by workflow" in line for line in m.describe())
    assert merge(d, {}, workflow_array="0-9%2").array == "0-9%2"


def test_directive_lines_sorted_and_deterministic():
    assert directive_lines({"time": "5", "exclusive": None, "comment": "a b"}, array="0-1") == [
        "#SBATCH --array=0-1",
        '#SBATCH --comment="a b"',
        "#SBATCH --exclusive",
        "#SBATCH --time=5",
    ]


def test_pbs_directives_that_sbatch_would_apply_are_reported():
    # sbatch 22.05 applies `#PBS -N x` / `#PBS -l walltime=...` from the leading block (checked on the cluster)
    d = read("#!/bin/bash\n#PBS -N pbsname\n#PBS -l walltime=00:05:00\n#SBATCH -n 1\ntrue\n#PBS -q late\n")
    assert [(n.line, n.message.split(":")[0]) for n in d.notes] == [(2, "#PBS directive"), (3, "#PBS directive")]
    notes = read("#!/bin/bash\n#PBS -N x\n#SBATCH --ignore-pbs\ntrue\n").notes
    assert len(notes) == 1 and notes[0].message.startswith("--ignore-pbs")
