"""The importer on what people actually run (issue 20, issue 18's import item, issue 13's names): nothing private
leaks out, every form of --dependency sbatch accepts, loops unrolled where their bounds are known, and a warning with
the line for everything not carried over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from slurmdag.compiler.spec import NAME_RE, parse_workflow
from slurmdag.porting.bash_lexer import BashSyntaxError, ForArith, ForIn, If, Simple, While, parse_script
from slurmdag.porting.importer import import_files

SCRIPT = "#!/bin/bash\n#SBATCH --time=5\ntrue\n"
PRIVATE = range(0xE000, 0xF900)


def run(chain: str, files: dict[str, str] | None = None, home: str | None = None):
    files = {"chain.sh": chain, **(files or {})}

    def read_text(path: str) -> str:
        key = path if path in files else Path(path).name
        if key not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return files[key]

    return import_files(["chain.sh"], None, read_text=read_text)


def allocs(result):
    return {a["name"]: a for a in result.workflow["allocations"]}


def messages(result) -> list[str]:
    return [f"{w.line}: {w.message}" for w in result.warnings]


def no_private_characters(result) -> None:
    text = result.to_yaml() + "\n".join(str(w) for w in result.warnings)
    assert not [c for c in text if ord(c) in PRIVATE], text


# ---------------------------------------------------------------- nothing private leaks out


def test_an_unresolved_argument_is_written_as_in_the_chain_and_reported():
    r = run("sbatch --array=1-$1 a.sh\n", {"a.sh": SCRIPT})
    no_private_characters(r)
    assert allocs(r)["a"]["array"] == "1-$1"
    assert messages(r) == ["1: --array=1-$1 uses a value that cannot be known here; written as in the chain"]


def test_a_dependency_on_two_jobs_after_one_type_names_both_jobs():
    # sbatch reads a term without a type as a bare job id: afterany (measured: afterok:A,B -> afterok:A,afterany:B)
    r = run(
        "A=$(sbatch --parsable a.sh)\nB=$(sbatch --parsable b.sh)\nsbatch --dependency=afterok:$A,$B c.sh\n",
        {"a.sh": SCRIPT, "b.sh": SCRIPT, "c.sh": SCRIPT},
    )
    no_private_characters(r)
    assert allocs(r)["c"]["depends_on"] == ["a", {"b": "any"}]
    assert messages(r) == [
        "3: dependency term '<job id of b>' has no type: sbatch reads a bare job id as afterany (run after it ends, "
        "whatever its outcome); imported the same way"
    ]


def test_a_bare_id_before_a_typed_term_is_what_sbatch_refuses():
    r = run(
        "A=$(sbatch --parsable a.sh)\nsbatch -d $A,afterok:$A c.sh\n",
        {"a.sh": SCRIPT, "c.sh": SCRIPT},
    )
    assert "has no type and a typed term follows it: sbatch refuses it" in messages(r)[0]


def test_marker_characters_in_the_input_itself_do_not_confuse_the_import():
    chain = "# \ue000\ue001\ue002\ue003\ue004\ue005 user text\nA=$(sbatch --parsable a.sh)\nsbatch -d afterok:$A b.sh\n"
    r = run(chain, {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert allocs(r)["b"]["depends_on"] == ["a"] and r.warnings == []


# ---------------------------------------------------------------- sbatch's output, and where ids come from


def test_without_parsable_the_chain_was_broken_the_import_is_not_but_says_so():
    r = run("X=$(sbatch a.sh)\nsbatch --dependency=afterok:$X b.sh\n", {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert allocs(r)["b"]["depends_on"] == ["a"]
    assert len(r.warnings) == 1 and r.warnings[0].line == 2
    assert "sbatch's whole message ('Submitted batch job N')" in r.warnings[0].message


@pytest.mark.parametrize(
    "take",
    [
        "$(sbatch a.sh | cut -f4 -d' ')",
        "$(sbatch a.sh | awk '{print $4}')",
        "`sbatch a.sh | awk '{print $NF}'`",
        "$(sbatch a.sh | sed -e 's/Submitted batch job //')",
        "$(sbatch a.sh | grep -o '[0-9]*')",
        "$(sbatch --parsable a.sh)",
        "$(sbatch --parsable a.sh | cut -d';' -f1)",
    ],
)
def test_every_way_of_cutting_the_id_out(take):
    r = run(f"X={take}\nsbatch -d afterok:$X b.sh\n", {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert allocs(r)["b"]["depends_on"] == ["a"] and r.warnings == []


@pytest.mark.parametrize(
    "cut", ["${OUT##* }", "${OUT//[!0-9]/}", "${OUT#Submitted batch job }", "$(echo $OUT | awk '{print $4}')"]
)
def test_cutting_a_saved_message(cut):
    r = run(f"OUT=$(sbatch a.sh)\nID={cut}\nsbatch -d afterok:$ID b.sh\n", {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert allocs(r)["b"]["depends_on"] == ["a"] and r.warnings == []


def test_a_script_path_with_a_tilde_is_read_from_home_and_kept_as_written():
    home_script = os.path.join(os.path.expanduser("~"), "x", "job.sh")
    r = run("sbatch ~/x/job.sh\n", {home_script: "#!/bin/bash\n#SBATCH -N 2\ntrue\n"})
    assert allocs(r)["job"]["script"] == "~/x/job.sh" and r.warnings == []


def test_validate_expands_a_tilde_in_script(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "job.sh").write_text(SCRIPT)
    spec = parse_workflow("name: w\nallocations:\n  - {name: a, script: ~/x/job.sh}\n", "wf.yaml", "/nonexistent")
    assert spec.allocations[0].script is not None


# ---------------------------------------------------------------- the dependency forms (issue 18's import item)


def test_a_dependency_built_in_a_loop_imports_with_every_edge():
    chain = """deps=""
for s in a b c; do
  jid=$(sbatch --parsable $s.sh)
  deps="$deps:$jid"
done
sbatch -d afterok$deps final.sh
"""
    files = {n: SCRIPT for n in ("a.sh", "b.sh", "c.sh", "final.sh")}
    r = run(chain, files)
    assert allocs(r)["final"]["depends_on"] == ["a", "b", "c"] and r.warnings == []


@pytest.mark.parametrize(
    "dep, needle",
    [
        ("afterok$deps", "dependency 'afterok$deps' cannot be read"),
        ("afterok", "dependency afterok names no job: sbatch refuses it"),
        ('"afterok:"', "dependency afterok: names no job after a ':': sbatch refuses it"),
        ("afterok:$A:", "names no job after a ':'"),
        ("afterok:$A,", "has an empty term"),
        ("after:$A", "dependency type 'after' has no slurmdag equivalent"),
        ("singleton", "dependency singleton has no slurmdag equivalent"),
        ("afterok:123", "dependency on existing job id 123 not translated"),
        ("afterok:$A+10", "dependency delay +10 not translated"),
        ("afterok:${A}_3", "widened to the whole array"),
        ("afterfoo:$A", "dependency type 'afterfoo' is not one sbatch knows"),
    ],
)
def test_a_dependency_not_carried_over_is_never_silent(dep, needle):
    # $deps is built in a `while read` loop, which cannot be followed here
    chain = f'A=$(sbatch --parsable a.sh)\nwhile read x; do deps="$deps:$x"; done < ids\nsbatch -d {dep} z.sh\n'
    r = run(chain, {"a.sh": SCRIPT, "z.sh": SCRIPT})
    found = [m for m in messages(r) if m.startswith("3: ")]
    assert any(needle in m for m in found), messages(r)
    no_private_characters(r)


def test_dependency_types_are_case_insensitive_and_the_last_dependency_wins():
    chain = "A=$(sbatch --parsable a.sh)\nB=$(sbatch --parsable a.sh)\nsbatch -d afterok:$A -d AFTERNOTOK:$B z.sh\n"
    r = run(chain, {"a.sh": SCRIPT, "z.sh": SCRIPT})
    assert allocs(r)["z"]["depends_on"] == [{"a-2": "failure"}]
    assert messages(r) == [
        "3: --dependency=afterok:<job id of a> is replaced by the later --dependency, as sbatch does"
    ]


# ---------------------------------------------------------------- loops


def chain_of(r) -> list[tuple[str, list]]:
    return [(a["name"], a.get("depends_on", [])) for a in r.workflow["allocations"]]


@pytest.mark.parametrize(
    "loop",
    [
        "for i in {1..3}; do",
        "for i in $(seq 3); do",
        "for i in `seq 1 3`; do",
        "for i in 1 2 3; do",
        "for ((i=1; i<=3; i++)); do",
        "for ((i=1; i<=$N; i++)) do",
        "i=1; while [ $i -le $N ]; do",
        "i=1; while [[ ${i} -le ${N} ]]; do",
        "i=1; until (( i > N )); do",
    ],
)
def test_a_counted_chain_is_unrolled(loop):
    step = "" if loop.startswith("for") else "  i=$((i+1))\n"
    body = "  J=$(sbatch --parsable -J step$i -d afterok:$J a.sh)\n"
    chain = f"N=3\nJ=$(sbatch --parsable -J first a.sh)\n{loop}\n{body}{step}done\n"
    r = run(chain, {"a.sh": SCRIPT})
    assert chain_of(r) == [("first", []), ("step1", ["first"]), ("step2", ["step1"]), ("step3", ["step2"])]
    assert r.warnings == []


def test_the_first_iteration_without_a_dependency_and_a_literal_list():
    chain = """prev=""
for stage in prep train eval; do
  if [ -z "$prev" ]; then
    prev=$(sbatch --parsable --job-name=$stage job.sh)
  else
    prev=$(sbatch --parsable --job-name=$stage --dependency=afterok:$prev job.sh)
  fi
done
"""
    r = run(chain, {"job.sh": SCRIPT})
    assert chain_of(r) == [("prep", []), ("train", ["prep"]), ("eval", ["train"])] and r.warnings == []


def test_an_array_of_scripts_and_an_mpcdf_style_while_loop():
    chain = """scripts=(
  "00_build.slurm"
  "01_sweep.slurm"
)
prev_job=""
for script in "${scripts[@]}"; do
  if [[ -z "${prev_job}" ]]; then
    prev_job=$(sbatch --parsable "${script}")
  else
    prev_job=$(sbatch --parsable --dependency=afterok:${prev_job} "${script}")
  fi
done
NR_OF_JOBS=3
JOBID=$(sbatch run.sh 2>&1 | awk '{print $(NF)}')
I=1
while [[ ${I} -lt ${NR_OF_JOBS} ]]; do
  JOBID=$(sbatch --dependency=afterany:${JOBID} run.sh 2>&1 | awk '{print $(NF)}')
  let I=${I}+1
done
"""
    files = {"00_build.slurm": SCRIPT, "01_sweep.slurm": SCRIPT, "run.sh": SCRIPT}
    r = run(chain, files)
    assert chain_of(r) == [
        ("00_build", []),
        ("01_sweep", ["00_build"]),
        ("run", []),
        ("run-2", [{"run": "any"}]),
        ("run-3", [{"run-2": "any"}]),
    ]
    assert r.warnings == []


def test_a_loop_over_unknown_values_is_reported_not_guessed():
    r = run('for f in "$@"; do sbatch $f; done\nfor x in *.sh; do sbatch $x; done\n')
    assert messages(r) == [
        "1: `for f in ...` not unrolled: the values ($@) are not known here",
        "1: sbatch inside the `for` loop at line 1: not translated",
        "2: `for x in ...` not unrolled: the values (*.sh) are not known here",
        "2: sbatch inside the `for` loop at line 2: not translated",
        "None: no sbatch call could be translated",
    ]
    assert r.workflow["allocations"] == []


def test_a_loop_whose_break_cannot_be_known_is_not_half_unrolled():
    chain = "for i in 1 2 3; do\n  sbatch a.sh\n  if [ -f stop ]; then break; fi\ndone\nsbatch b.sh\n"
    r = run(chain, {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert [a["name"] for a in r.workflow["allocations"]] == ["b"]
    assert messages(r)[:2] == [
        "1: loop not unrolled: a `break` in it depends on something that cannot be known here",
        "2: sbatch inside the loop at line 1: not translated",
    ]


def test_a_function_that_wraps_sbatch_is_followed():
    chain = """submit() {
  local dep=""
  [ -n "$2" ] && dep="--dependency=afterok:$2"
  sbatch --parsable $dep "$1"
}
A=$(submit a.sh)
B=$(submit b.sh "$A")
"""
    r = run(chain, {"a.sh": SCRIPT, "b.sh": SCRIPT})
    assert chain_of(r) == [("a", []), ("b", ["a"])] and r.warnings == []


def test_cd_moves_the_jobs_working_directory_and_script_paths():
    r = run("cd jobs\nsbatch a.sh\ncd ..\nsbatch jobs/a.sh\n", {"a.sh": SCRIPT})
    a = allocs(r)
    assert a["a"]["script"] == "jobs/a.sh" and a["a"]["workdir"] == "jobs"
    assert "workdir" not in a["a-2"] and r.warnings == []


def test_environment_prefix_becomes_the_jobs_env():
    r = run("STEP=3 MODE=fast sbatch a.sh\n", {"a.sh": SCRIPT})
    assert allocs(r)["a"]["env"] == {"STEP": "3", "MODE": "fast"} and r.warnings == []


def test_an_if_on_something_unknown_is_reported_with_what_it_would_submit():
    r = run("if [ -f ready ]; then\n  sbatch a.sh\nfi\n", {"a.sh": SCRIPT})
    assert messages(r) == [
        "1: `if` not translated: its condition cannot be known here",
        "2: sbatch inside the `if` at line 1: not translated",
        "None: no sbatch call could be translated",
    ]


def test_error_handling_loses_nothing():
    chain = (
        "A=$(sbatch --parsable a.sh) || exit 1\nif [ $? -ne 0 ]; then echo failed; exit 1; fi\n"
        "sbatch -d afterok:$A a.sh || { echo no; exit 1; }\n"
    )
    r = run(chain, {"a.sh": SCRIPT})
    assert chain_of(r) == [("a", []), ("a-2", ["a"])] and r.warnings == []


def test_a_default_for_an_argument_is_taken_and_said():
    r = run('MODE="${1:-afterany}"\nA=$(sbatch --parsable a.sh)\nsbatch -d ${MODE}:$A a.sh\n', {"a.sh": SCRIPT})
    assert allocs(r)["a-2"]["depends_on"] == [{"a": "any"}]
    assert messages(r) == ["1: $1 is the chain's own argument; assumed it is unset, so ${1:-...} gives 'afterany'"]


def test_a_bash_syntax_error_is_a_located_input_error():
    from slurmdag.model.errors import InputError

    with pytest.raises(InputError) as e:
        run("for i in 1 2; do\n  sbatch a.sh\n")
    assert "chain.sh:1:1: cannot read as bash: `for` at line 1 has no `done`" in str(e.value)


# ---------------------------------------------------------------- names (issue 13)


def test_a_long_job_name_is_shortened_deterministically_and_validates(tmp_path):
    long = "x" * 70
    r = run(f"sbatch -J {long} a.sh\nsbatch -J {long} a.sh\nsbatch -J 'my job!' a.sh\n", {"a.sh": SCRIPT})
    names = [a["name"] for a in r.workflow["allocations"]]
    assert names == ["x" * 64, "x" * 62 + "-2", "my-job"]
    assert all(NAME_RE.match(n) for n in names)
    assert [w.line for w in r.warnings] == [1, 2, 3]
    assert "at most 64 characters" in r.warnings[0].message
    (tmp_path / "a.sh").write_text(SCRIPT)
    wf = tmp_path / "wf.yaml"
    wf.write_text(yaml.safe_dump(r.workflow))
    assert len(parse_workflow(wf.read_text(), str(wf), tmp_path).allocations) == 3


def test_a_script_named_with_a_long_job_name_imported_alone(tmp_path):
    script = tmp_path / "long.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --job-name={'y' * 70}\n#SBATCH -o %x_%A_%a.out\ntrue\n")
    r = import_files([str(script)], str(tmp_path / "wf.yaml"))
    assert r.workflow["allocations"][0]["name"] == "y" * 64
    assert [w.line for w in r.warnings] == [2, 3]
    assert "%x is the job name" in r.warnings[1].message


def test_comment_and_cluster_alias_are_carried():
    r = run("sbatch --comment=96:00:00 --cluster=c1 a.sh\n", {"a.sh": SCRIPT})
    assert allocs(r)["a"]["sbatch"] == ["--comment=96:00:00", "--clusters=c1"] and r.warnings == []


# ---------------------------------------------------------------- the lexer


def test_the_lexer_builds_the_compound_commands():
    nodes = parse_script(
        "for i in 1 2; do echo $i; done\nfor ((i=0;i<2;i++)) do :; done\nwhile [[ $a && $b ]]; do :; done\n"
        "if a; then b; elif c; then d; else e; fi\nx=1 && y=2 || z=3\n"
    )
    assert [type(n) for n in nodes] == [ForIn, ForArith, While, If, Simple, Simple, Simple]
    assert [n.sep_before for n in nodes[4:]] == [";", "&&", "||"]
    assert len(nodes[3].branches) == 2 and nodes[3].orelse is not None
    assert [w.literal() for w in nodes[2].cond[0].pipeline[0].words] == ["[[", None, "&&", None, "]]"]


def test_here_documents_and_redirections_are_not_commands():
    nodes = parse_script("cat <<EOF > out\nsbatch nope.sh\nEOF\nsbatch a.sh 2>&1 > /dev/null\n")
    assert len(nodes) == 2
    assert nodes[0].pipeline[0].redirects[0].heredoc == "sbatch nope.sh\n"
    assert [w.literal() for w in nodes[1].pipeline[0].words] == ["sbatch", "a.sh"]


@pytest.mark.parametrize("bad", ["for i in 1; do echo", "echo 'x", "if a; then b", "cat <<EOF\nx\n", "done"])
def test_bash_errors(bad):
    with pytest.raises(BashSyntaxError):
        parse_script(bad)
