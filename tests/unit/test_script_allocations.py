"""`script:` allocations: the script's #SBATCH block is read at load time, merged under the workflow's keys, and the
compiled script gives sbatch exactly the merged options, with the script's body kept verbatim."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from slurmdag.compiler.compile import compile_file
from slurmdag.compiler.script_directives import interpreter, read_directives, shell_kind
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Plan

from .conftest import problem_lines


def sbatch_view(script: str) -> dict[str, str | None]:
    """The options sbatch applies from a compiled script, read with the same reader used on users' scripts."""
    d = read_directives(script, "compiled.sbatch")
    assert d.problems == []
    return d.effective()


def compile_one(write, script_text: str, alloc: str, extra: str = "", name: str = "job.sh"):
    write(script_text, name)
    path = write(f"name: w\n{extra}allocations:\n  - {{name: a, script: {name}{alloc}}}\n")
    warnings: list = []
    plan = compile_file(path, warnings=warnings)
    return plan.job("a"), warnings


def test_script_options_are_merged_and_the_workflow_wins(write):
    script = "#!/bin/bash\n#SBATCH -N 2 -t 10 -p short\n#SBATCH --mem-per-cpu=100M --mail-type=END\nsrun hostname\n"
    job, _ = compile_one(
        write, script, ", walltime: 5, mem: 1G, sbatch: [--mail-type=FAIL]", "defaults: {partition: debug}\n"
    )
    assert job.options == {
        "mail-type": "FAIL",  # sbatch: extras win
        "mem": "1G",  # the workflow's --mem replaces the script's --mem-per-cpu (sbatch refuses both)
        "nodes": "2",  # from the script
        "partition": "debug",  # defaults win too
    }
    assert job.walltime == 300  # the workflow's, typed: never an option string
    assert sbatch_view(job.script) == {**job.options, "time": "00:05:00", "job-name": "a"}
    assert job.option_sources == [
        "--nodes=2  (script line 2)",
        "--time=10  (script line 2, overridden by workflow)",
        "--partition=short  (script line 2, overridden by workflow)",
        "--mem-per-cpu=100M  (script line 3, dropped: workflow sets --mem)",
        "--mail-type=END  (script line 3, overridden by workflow)",
        "--mail-type=FAIL  (workflow)",
        "--mem=1G  (workflow)",
        "--partition=debug  (workflow)",
        "--time=00:05:00  (workflow)",
    ]


def test_sbatch_extras_are_compared_by_full_option_name(write):
    # sbatch reads `--mail-t` as --mail-type (a unique prefix), so the workflow's value replaces the script's
    job, _ = compile_one(write, "#!/bin/bash\n#SBATCH --mail-type=END\ntrue\n", ", sbatch: [--mail-t=FAIL]")
    assert job.options == {"mail-type": "FAIL"}


@pytest.mark.parametrize("flag", ["--time=5", "--chd=/tmp", "--tasks-per-node=2"])
def test_sbatch_extras_cannot_bypass_a_key_by_another_spelling(write, flag):
    with pytest.raises(InputError, match="duplicates the `(walltime|workdir|ntasks_per_node)` key"):
        compile_one(write, "#!/bin/bash\ntrue\n", f", sbatch: [{flag}]")


@pytest.mark.parametrize(
    "time, seconds", [("10", 600), ("1-0", 86400), ("2:30:00", 9000), ("UNLIMITED", 0), ("infinite", 0), ("0", 0)]
)
def test_script_time_becomes_the_typed_walltime(write, time, seconds):
    job, _ = compile_one(write, f"#!/bin/bash\n#SBATCH --time={time}\ntrue\n", "")
    assert "time" not in job.options and job.walltime == seconds
    assert sbatch_view(job.script)["time"] == ("UNLIMITED" if seconds == 0 else wt.format_walltime(seconds))


def test_script_time_slurm_cannot_read_is_refused_where_it_is_written(write):
    with pytest.raises(InputError) as info:
        compile_one(write, "#!/bin/bash\n#SBATCH -N 1\n#SBATCH --time=soon\ntrue\n", "")
    [problem] = info.value.problems
    assert problem.location().endswith("job.sh:3:9") and "invalid --time 'soon'" in problem.message


def test_values_with_blanks_and_quotes_reach_sbatch_unchanged(write):
    script = '#!/bin/bash\n#SBATCH --output="dir with space/%j.out" --mail-user=\'a"b@x\'\n./job\n'
    job, warnings = compile_one(write, script, "")
    assert job.options == {"mail-user": 'a"b@x', "output": "dir with space/%j.out"}
    assert sbatch_view(job.script) == {**job.options, "job-name": "a"}
    assert warnings == []


def test_no_script_directive_leaks_through_the_body(write):
    # the body keeps its #SBATCH lines verbatim; they must come after our first command, where sbatch stops
    script = "#!/bin/bash\n#SBATCH --nodes=3\n#SBATCH --comment=mine\n# note\nhostname\n#SBATCH --nodes=9\n"
    job, warnings = compile_one(write, script, ", nodes: 1")
    # the script's own comment is the user's and is kept (slurmdag finds its jobs by name)
    assert sbatch_view(job.script) == {"job-name": "a", "nodes": "1", "comment": "mine"}
    assert job.script.endswith("\n#SBATCH --nodes=3\n#SBATCH --comment=mine\n# note\nhostname\n#SBATCH --nodes=9\n")
    assert [(w.location().rsplit("/", 1)[1], "ignores" in w.message) for w in warnings] == [("job.sh:6:1", True)]


def test_script_array_makes_a_task_group_before_graph_checks(write):
    write("#!/bin/bash\n#SBATCH --array=0-3%2\necho $SLURM_ARRAY_TASK_ID\n", "arr.sh")
    ok = write(
        "name: w\nallocations:\n"
        "  - {name: a, script: arr.sh}\n"
        "  - {name: b, tasks: 4, entrypoint: x, depends_on: [{a: corresponding}]}\n"
    )
    plan = compile_file(ok)
    a = plan.job("a")
    assert (a.array, a.tasks) == ("0-3%2", 4)
    assert sbatch_view(a.script)["array"] == "0-3%2"
    assert 'export SLURMDAG_TASK_INDEX="${SLURM_ARRAY_TASK_ID:-}"' in a.script
    assert a.option_sources == ["--array=0-3%2  (script line 2)"]

    bad = write(
        "name: w\nallocations:\n"
        "  - {name: a, script: arr.sh}\n"
        "  - {name: b, tasks: 5, entrypoint: x, depends_on: [{a: corresponding}]}\n",
        "bad.yaml",
    )
    with pytest.raises(InputError) as e:
        compile_file(bad)
    assert any("corresponding" in p.message for p in e.value.problems), problem_lines(e.value)


def test_workflow_task_group_beats_the_script_array(write):
    job, _ = compile_one(write, "#!/bin/bash\n#SBATCH --array=0-3\ntrue\n", ", tasks: 2")
    assert (job.array, job.tasks) == ("0-1", 2)
    assert sbatch_view(job.script)["array"] == "0-1"
    assert job.option_sources == ["--array=0-3  (script line 2, overridden by workflow)", "--array=0-1  (workflow)"]


def test_owned_directives_are_errors_at_the_script_line_with_the_rest(write):
    write("#!/bin/bash\n#SBATCH -N1\n#SBATCH --dependency=afterok:12 -H\n#SBATCH --wrap=true\ntrue\n", "job.sh")
    path = write("name: w\nallocations:\n  - {name: a, script: job.sh, walltime: never}\n")
    with pytest.raises(InputError) as e:
        compile_file(path)
    lines = problem_lines(e.value)
    base = str(path.parent / "job.sh")
    assert f"{base}:3:9: --dependency=afterok:12: this option is set by slurmdag" in lines
    assert f"{base}:3:33: --hold: this option is set by slurmdag" in lines
    assert f"{base}:4:9: --wrap=true: this option is set by slurmdag" in lines
    assert any(line.startswith(f"{path}:3:") and "walltime" in line for line in lines)  # one report for both files


def test_bad_script_array_points_into_the_script(write):
    write("#!/bin/bash\n#SBATCH -N 1 --array=5-2\ntrue\n", "job.sh")
    path = write("name: w\nallocations:\n  - {name: a, script: job.sh}\n")
    with pytest.raises(InputError) as e:
        compile_file(path)
    assert [line.split(": invalid")[0] for line in problem_lines(e.value)] == [f"{path.parent / 'job.sh'}:2:14"]


def test_notes_are_warnings_reported_once_per_script(write):
    write("#!/bin/bash\n#SBATCH --comment=old --parsable -J old\ntrue\n", "job.sh")
    path = write("name: w\nallocations:\n  - {name: a, script: job.sh}\n  - {name: b, script: job.sh}\n")
    warnings: list = []
    plan = compile_file(path, warnings=warnings)
    assert len(plan.allocations()) == 2
    assert [w.col for w in warnings] == [23]  # --job-name is mapped (not applied, by design): no warning
    assert plan.job("a").options == {"comment": "old"}
    assert sbatch_view(plan.job("b").script) == {"job-name": "b", "comment": "old"}


@pytest.mark.parametrize(
    ("shebang", "name", "kind"),
    [
        ("#!/bin/bash", "bash", "bash"),
        ("#!/usr/bin/env bash", "bash", "bash"),
        ("#!/bin/bash -l", "bash", "bash"),
        ("#!/bin/sh", "sh", "sh"),
        ("#!/usr/bin/env -S python3 -u", "python3", "none"),
        ("#!/usr/bin/perl -w", "perl", "none"),
        ("#!/bin/tcsh", "tcsh", "none"),
    ],
)
def test_interpreter_kinds(shebang, name, kind):
    assert (interpreter(shebang), shell_kind(shebang)) == (name, kind)


def test_shell_scripts_keep_their_shebang_and_posix_sh_gets_no_bash_code(write):
    job, _ = compile_one(write, "#!/bin/bash -l\n#SBATCH -N1\nmodule list\n", "")
    assert job.script.startswith("#!/bin/bash -l\n#SBATCH --job-name=a\n")
    job, _ = compile_one(write, "#!/bin/sh\n#SBATCH -N1\necho $0\n", ", setup: 'echo hi'", name="p.sh")
    assert job.script.startswith("#!/bin/sh\n")
    assert "pipefail" not in job.script and "shopt" not in job.script and "set -eu\n" in job.script


def test_non_shell_script_gets_no_code_and_its_body_from_the_first_command(write):
    text = "#!/usr/bin/env python3\n#SBATCH --mem=100M\n# a comment\nimport os\nprint('hi')\n"
    job, _ = compile_one(write, text, "", name="job.py")
    assert sbatch_view(job.script) == {"job-name": "a", "mem": "100M"}
    assert job.script.startswith("#!/usr/bin/env python3\n")
    assert job.script.endswith("\nimport os\nprint('hi')\n")
    assert "export" not in job.script and "set -" not in job.script


def test_env_setup_and_matrix_are_refused_for_a_non_shell_script(write):
    write("#!/usr/bin/python3\nprint(1)\n", "job.py")
    path = write("name: w\nallocations:\n  - {name: a, script: job.py, env: {A: 1}, setup: x, matrix: {k: [1, 2]}}\n")
    with pytest.raises(InputError) as e:
        compile_file(path)
    assert [m.split(":", 3)[3].split(" cannot")[0] for m in problem_lines(e.value)] == [
        " `env`",
        " `setup`",
        " `matrix`",
    ]


@pytest.mark.parametrize(
    ("shebang", "expected"),
    [("#!/bin/bash", "e=0 u=0 pf=0"), ("#!/bin/bash -e", "e=1 u=0 pf=0"), ("#!/bin/bash -u", "e=0 u=1 pf=0")],
)
def test_the_script_runs_with_its_own_shell_options(write, tmp_path, shebang, expected):
    body = (
        "case $- in *e*) e=1 ;; *) e=0 ;; esac; case $- in *u*) u=1 ;; *) u=0 ;; esac\n"
        "shopt -qo pipefail && pf=1 || pf=0\n"
        'echo "e=$e u=$u pf=$pf"\n'
    )
    job, _ = compile_one(write, f"{shebang}\n#SBATCH -N1\n{body}", ", env: {X: '1'}, setup: 'test -n \"$X\"'")
    path = tmp_path / "compiled.sbatch"
    path.write_text(job.script)
    path.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run([str(path)], capture_output=True, text=True, env=env, timeout=20)
    assert (done.returncode, done.stdout) == (0, expected + "\n"), done.stderr


def test_plan_json_carries_option_sources_and_round_trips(write):
    job, _ = compile_one(write, "#!/bin/bash\n#SBATCH -N 2\ntrue\n", ", walltime: 5")
    path = write("name: w\nallocations:\n  - {name: a, script: job.sh}\n  - {name: b, entrypoint: x}\n", "two.yaml")
    plan = compile_file(path)
    data = json.loads(plan.to_json())
    assert data["jobs"][0]["option_sources"] == ["--nodes=2  (script line 2)"]
    assert "option_sources" not in data["jobs"][1]  # entrypoint jobs: unchanged plan.json
    assert Plan.from_json(plan.to_json()) == plan


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "slurmdag", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_compile_shows_the_merged_options_and_validate_the_warnings(write, tmp_path):
    write("#!/bin/bash\n#SBATCH -N 2 --time=10\n#SBATCH --parsable\ntrue\n", "job.sh")
    write("name: w\nallocations:\n  - {name: a, script: job.sh, walltime: 5}\n")
    done = cli("compile", "wf.yaml", "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        "a: sbatch options (script merged with the workflow; the workflow wins):\n"
        "  --nodes=2  (script line 2)\n"
        "  --time=10  (script line 2, overridden by workflow)\n"
        "  --time=00:05:00  (workflow)\n"
    ) in done.stdout
    assert done.stderr.startswith("job.sh:3:9: warning: --parsable: ")
    done = cli("validate", "wf.yaml", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "wf.yaml: valid (1 allocations)\n")
    assert "job.sh:3:9: warning:" in done.stderr


def test_cli_refuses_owned_directives_with_exit_2_and_no_traceback(write, tmp_path):
    write("#!/bin/bash\n#SBATCH --parsable\n#SBATCH -d afterok:1\ntrue\n", "job.sh")
    write("name: w\nallocations:\n  - {name: a, script: job.sh}\n")
    done = cli("validate", "wf.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "job.sh:2:9: warning: --parsable" in done.stderr
    assert "job.sh:3:9: --dependency=afterok:1: this option is set by slurmdag\n  hint: express edges" in done.stderr


def test_an_env_dash_s_login_shell_shebang_is_kept_and_its_directives_read(write):
    """`#!/usr/bin/env -S bash -l` (a login shell, common where modules need it): the shebang reaches the compiled
    script unchanged, and the #SBATCH lines under it are applied as sbatch applies them."""
    script = "#!/usr/bin/env -S bash -l\n#SBATCH --time=5\n#SBATCH --ntasks=2\nmodule load x\necho hi\n"
    job, _ = compile_one(write, script, "")
    assert job.script.splitlines()[0] == "#!/usr/bin/env -S bash -l"
    assert job.walltime == 300
    assert sbatch_view(job.script) == {"ntasks": "2", "time": "00:05:00", "job-name": "a"}
    assert "module load x\necho hi\n" in job.script
