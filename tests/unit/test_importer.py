"""The bash-chain importer: what it translates, and that everything else becomes a warning with a line number."""

from pathlib import Path

import pytest
import yaml

from slurmdag.model.errors import InputError
from slurmdag.porting.bash_lexer import Part, lex_commands
from slurmdag.porting.importer import import_files, slurm_time_to_walltime

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SCRIPT = "#!/bin/bash\n#SBATCH --time=5\ntrue\n"


def run(chain: str, files: dict[str, str] | None = None):
    files = {"chain.sh": chain, **(files or {})}

    def read_text(path: str) -> str:
        name = Path(path).name
        if name not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return files[name]

    return import_files(["chain.sh"], None, read_text=read_text)


def allocs(result):
    return {a["name"]: a for a in result.workflow["allocations"]}


def test_parsable_backticks_and_cut_forms_with_all_conditions():
    chain = """#!/bin/bash
A=$(sbatch --parsable a.sh)
B=`sbatch b.sh | cut -d' ' -f4`
C=$(sbatch c.sh | awk '{print $4}')
D=$(sbatch --parsable --dependency=afterok:$A:$B,afternotok:${C} d.sh)
sbatch -d afterany:$D --wrap "echo done" -J report
E=$(sbatch --parsable --array=0-3 -d aftercorr:$D e.sh)
sbatch --dependency=afterok:$A?afterok:$E f.sh
"""
    files = {n: SCRIPT for n in ("a.sh", "b.sh", "c.sh", "d.sh", "e.sh", "f.sh")}
    r = run(chain, files)
    a = allocs(r)
    assert list(a) == ["a", "b", "c", "d", "report", "e", "f"]
    assert a["d"]["depends_on"] == ["a", "b", {"c": "failure"}]
    assert a["report"] == {"name": "report", "entrypoint": "echo done", "depends_on": [{"d": "any"}]}
    assert a["e"]["array"] == "0-3" and a["e"]["depends_on"] == [{"d": "corresponding"}]
    assert a["f"]["depends_on_any"] == ["a", "e"]
    assert a["a"]["script"] == "a.sh"
    assert r.warnings == []


def test_options_map_to_keys_or_raw_flags():
    r = run(
        "X=$(sbatch --parsable -N 2 -n8 -c 2 --mem=4G -t 1-02:00:00 -p debug --gres=gpu:2 -C ib "
        "--exclusive --mail-type=END --export=ALL,A=1 -o o_%j -e e_%j x.sh)\n",
        {"x.sh": SCRIPT},
    )
    x = allocs(r)["x"]
    assert x["nodes"] == 2 and x["ntasks"] == 8 and x["cpus_per_task"] == 2
    assert x["mem"] == "4G" and x["walltime"] == "1-02:00:00" and x["partition"] == "debug"
    assert x["gres"] == "gpu:2" and x["constraint"] == "ib" and x["exclusive"] is True
    assert x["output"] == "o_%j" and x["error"] == "e_%j"
    assert x["sbatch"] == ["--mail-type=END", "--export=ALL,A=1"]


def test_names_from_job_name_script_stem_deduplicated_and_sanitized():
    script_named = "#!/bin/bash\n#SBATCH -J 'my job!'\ntrue\n"
    r = run("sbatch a.sh\nsbatch a.sh\nsbatch -J '__x y' a.sh\nsbatch n.sh\n", {"a.sh": SCRIPT, "n.sh": script_named})
    assert list(allocs(r)) == ["a", "a-2", "x-y", "my-job"]


def test_string_variables_aliases_and_line_continuations_resolve():
    chain = """DIR=jobs
OUT=$(sbatch $DIR/a.sh)
A=${OUT##* }
DEP="afterok:$A"
B=$(sbatch --parsable \\
      --dependency=$DEP \\
      "${DIR}/b.sh")
C=$(echo $B | cut -d';' -f1)
sbatch --dependency=afterok:$C jobs/a.sh
"""
    r = run(chain, {"a.sh": SCRIPT, "b.sh": SCRIPT})
    a = allocs(r)
    assert a["b"]["depends_on"] == ["a"] and a["b"]["script"] == "jobs/b.sh"
    assert a["a-2"]["depends_on"] == ["b"]
    assert r.warnings == []


def test_untranslatable_things_are_warnings_with_line_numbers():
    chain = """#!/bin/bash
mkdir -p logs
for i in 1 2 3; do
  sbatch shard.sh $i
done
if [ -z "$X" ]; then
  echo no
fi
A=$(sbatch --parsable a.sh)
B=$(sbatch --parsable -d afterok:$UNKNOWN:$A a.sh)
sbatch -d after:$A -d afterok:12345 a.sh
sbatch a.sh arg1
cleanup() { rm -rf tmp; }
[ -f flag ] && sbatch a.sh
sbatch --dependency=afterok:${A}_2 --hold a.sh
while read f; do sbatch "$f"; done < list.txt
"""
    r = run(chain, {"a.sh": SCRIPT, "shard.sh": SCRIPT})
    lines = [w.line for w in r.warnings]
    # the loop over known values is unrolled (each call's script argument is reported); an `if` that only prints
    # and a function that is never called lose nothing
    assert lines == [2, 4, 4, 4, 10, 11, 11, 12, 14, 15, 15, 16, 16], "\n".join(map(str, r.warnings))
    text = "\n".join(str(w) for w in r.warnings)
    assert "chain.sh:14:16: sbatch after `&&`" in text and "chain.sh:16:18: sbatch inside the `while`" in text
    assert "$UNKNOWN" in text and "12345" in text and "replaced by the later --dependency" in text
    assert "arg1" in text and "widened to the whole array" in text and "--hold" in text
    # what could be translated still was
    assert [a["name"] for a in r.workflow["allocations"]] == [
        "shard",
        "shard-2",
        "shard-3",
        "a",
        "a-2",
        "a-3",
        "a-4",
        "a-5",
    ]
    assert allocs(r)["a-2"]["depends_on"] == ["a"]


def test_missing_batch_script_is_a_warning_not_a_crash():
    r = run("sbatch missing.sh\n")
    assert [w.line for w in r.warnings] == [1]
    assert allocs(r)["missing"]["script"] == "missing.sh"


def test_owned_directive_in_followed_script_is_reported():
    r = run("sbatch a.sh\n", {"a.sh": "#!/bin/bash\n#SBATCH --dependency=afterok:1\ntrue\n"})
    assert any(w.file.endswith("a.sh") and w.line == 2 for w in r.warnings)


def test_array_from_script_directive_is_made_explicit():
    r = run("sbatch a.sh\n", {"a.sh": "#!/bin/bash\n#SBATCH --array=0-9%3\ntrue\n"})
    assert allocs(r)["a"]["array"] == "0-9%3"


def test_mixed_and_or_becomes_or_with_a_warning():
    r = run(
        "A=$(sbatch --parsable a.sh)\nB=$(sbatch --parsable a.sh)\nsbatch -d afterok:$A,afterok:$B?afterany:$A a.sh\n",
        {"a.sh": SCRIPT},
    )
    assert allocs(r)["a-3"]["depends_on_any"] == ["a", "a-2", {"a": "any"}]
    assert [w.line for w in r.warnings] == [3]


def test_unreadable_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as ei:
        import_files([str(tmp_path / "nope.sh")])
    assert "no such file" in str(ei.value)
    bad = tmp_path / "bin.sh"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError):
        import_files([str(bad)])


@pytest.mark.parametrize(
    "slurm, ours",
    [
        ("30", 30),
        ("0:10:00", 10),
        ("90:00", "01:30:00"),
        ("5:30", "00:05:30"),
        ("1-0", "1-00:00:00"),
        ("2-12:30", "2-12:30:00"),
        ("1-00:00:01", "1-00:00:01"),
        ("UNLIMITED", "UNLIMITED"),
    ],
)
def test_slurm_time_forms(slurm, ours):
    assert slurm_time_to_walltime(slurm) == ours


def test_lexer_keeps_quotes_and_substitutions_apart():
    cmds = lex_commands("A=\"$(sbatch x.sh)\"; echo 'a;b' && B=`y`\n")
    assert [c.sep_before for c in cmds] == ["", ";", "&&"]
    assert cmds[0].words[0].parts == [Part("lit", "A="), Part("cmd", "sbatch x.sh", True)]
    assert cmds[1].words[1].parts == [Part("lit", "a;b", True)]


def test_fixture_chain_imports_cleanly_and_loads_as_a_workflow(tmp_path):
    chain = FIXTURES / "bash-chains" / "pipeline.sh"
    out = chain.parent / "imported.yaml"
    r = import_files([str(chain)], str(out))
    assert r.warnings == []
    a = allocs(r)
    assert set(a) == {"prepare", "shard", "stats", "merge", "on-failure", "report", "peek"}
    assert a["merge"]["depends_on"] == ["shard", "stats"]
    assert a["on-failure"]["depends_on"] == [{"merge": "failure"}]
    assert a["peek"]["depends_on_any"] == ["shard", "stats"]
    assert a["shard"]["array"] == "0-3%2"
    doc = yaml.safe_load(r.to_yaml())
    assert doc == r.workflow
    spec = pytest.importorskip("slurmdag.compiler.spec")
    if not hasattr(spec, "load_workflow"):
        pytest.skip("spec.load_workflow not available yet")
    out_file = chain.parent / "_imported_for_test.yaml"
    out_file.write_text(r.to_yaml())
    try:
        wf = spec.load_workflow(str(out_file))
    finally:
        out_file.unlink()
    assert len(wf.allocations) == 7
