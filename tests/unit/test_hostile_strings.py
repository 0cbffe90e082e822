"""User strings must not change the #SBATCH block or run shell code they did not mean to."""

from __future__ import annotations

import json
import subprocess

import jinja2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slurmdag.compiler.api import Workflow
from slurmdag.model.errors import InputError
from slurmdag.model.slurm_values import format_walltime

HOSTILE = [
    "plain",
    "two words",
    "new\nline",
    "\n#SBATCH --hold",
    "#SBATCH --dependency=afterok:1",
    'it\'s "quoted"',
    "$(touch /tmp/slurmdag-pwned)",
    "`touch /tmp/slurmdag-pwned`",
    "${HOME} $HOME \\ \\n",
    "ünïcødé ✓ 日本",
    "tab\there; semi; && || | > < *",
    "'",
    "",
]


def sbatch_directives(script: str) -> list[str]:
    """The #SBATCH arguments sbatch would read: it stops at the first line that is not a comment or blank."""
    out = []
    for line in script.split("\n")[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if line.startswith("#SBATCH"):
            out.append(line[len("#SBATCH ") :])
    return out


def expected_directives(job) -> list[str]:
    opts = dict(job.options)
    opts["job-name"] = job.name
    if job.array:
        opts["array"] = job.array
    if job.walltime is not None:
        opts["time"] = format_walltime(job.walltime)
    return [f"--{k}" if v is None else f"--{k}={v}" for k, v in sorted(opts.items())]


def run_script(script: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=20)
    assert done.returncode == 0, done.stderr
    return done.stdout


PRINT_ENV = (
    "python3 -c 'import json, os; "
    'print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(("V", "SLURMDAG_"))}))\''
)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_entrypoint_and_setup_cannot_add_directives(text):
    w = Workflow("w")
    w.allocation("a", entrypoint=text or "true", setup=[text], partition="debug", walltime=5, tasks=2)
    plan = w.compile()
    job = plan.job("a")
    assert sbatch_directives(job.script) == expected_directives(job)
    assert job.script.count("#SBATCH --hold") == (text.count("#SBATCH --hold") * 2)  # only the user's own lines


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_env_and_matrix_values_round_trip_through_bash(text):
    w = Workflow("w", params={"p": text})
    w.allocation(
        "a",
        entrypoint=PRINT_ENV,
        env={"V1": text, "V2": "{{ params.p }}"},
        matrix={"m": [text, "x"]},
    )
    script = w.compile().job("a").script
    seen = json.loads(run_script("export SLURM_ARRAY_TASK_ID=0\n" + script))
    assert seen["V1"] == text
    assert seen["V2"] == text
    assert seen["SLURMDAG_MATRIX_M"] == text
    assert seen["SLURMDAG_TASK_INDEX"] == "0"
    assert seen["SLURMDAG_ALLOCATION"] == "a"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40))
# a comment opened at the very end: jinja2 itself renders it as nothing, without a word (found by this test)
@example("{#")
@example("abc{#- ")
@example("{##}")
def test_any_env_value_round_trips(text):
    w = Workflow("w")
    w.allocation("a", entrypoint=PRINT_ENV, env={"V": text})
    if "\r\n" in text:
        with pytest.raises(InputError):  # sbatch refuses a script holding \r\n anywhere
            w.compile()
        return
    expected = text
    if any(mark in text for mark in ("{{", "{%", "{#")):
        # env values are templates: either a located input error, or exactly what the template says (a closed
        # comment, a literal expression); never the text changed silently some other way
        try:
            expected = jinja2.Environment().from_string(text).render()
        except jinja2.TemplateError:
            expected = None
        if expected is None or expected == "" and "#}" not in text:
            with pytest.raises(InputError):
                w.compile()
            return
        try:
            plan = w.compile()
        except InputError:
            return
        assert json.loads(run_script(plan.job("a").script))["V"] == expected
        return
    seen = json.loads(run_script(w.compile().job("a").script))
    assert seen["V"] == expected


@pytest.mark.parametrize("text", ["a\r", "\r", "x\ry\r"])
def test_an_env_value_may_end_in_a_carriage_return(text):
    """It is quoted in the script, so no \r\n follows it (unlike an entrypoint or setup line, which are refused)."""
    w = Workflow("w")
    w.allocation("a", entrypoint=PRINT_ENV, env={"V": text})
    assert "\r\n" not in w.compile().job("a").script
    seen = json.loads(run_script(w.compile().job("a").script))
    assert seen["V"] == text


@pytest.mark.parametrize(
    "name",
    ["a b", "a\nb", "#SBATCH", "a;b", "$(x)", "`x`", "naïve", "-a", "", "a" * 65, "a'b", "a/b"],
)
def test_hostile_names_are_rejected(name):
    w = Workflow("w")
    w.allocation(name, entrypoint="true")
    with pytest.raises(InputError) as info:
        w.compile()
    assert info.value.problems[0].message.startswith(("invalid allocation name", "allocation name"))


@pytest.mark.parametrize(
    "key", ["partition", "account", "qos", "reservation", "constraint", "gres", "workdir", "output", "error", "uenv"]
)
@pytest.mark.parametrize("value", ["a\nb", "a b", "a\x00b", 'a"b', "a'b", "a#b", "a\\b", "a\rb", "a\u2028b"])
def test_directive_values_that_could_end_the_line_are_rejected(key, value):
    w = Workflow("w")
    w.allocation("a", entrypoint="true", **{key: value})
    with pytest.raises(InputError) as info:
        w.compile()
    (problem,) = info.value.problems
    assert problem.message.startswith(f"`{key}` contains ")
    assert problem.file == f"<python>:allocations[0].{key}"


def test_sbatch_extra_flag_values_are_checked_too():
    w = Workflow("w")
    w.allocation("a", entrypoint="true", sbatch=["--mail-user=me@x.org --hold"])
    with pytest.raises(InputError) as info:
        w.compile()
    assert (
        info.value.problems[0].message
        == "`sbatch --mail-user` contains a space, which cannot appear in an #SBATCH directive"
    )


def test_params_with_newlines_stay_inside_the_entrypoint():
    w = Workflow("w", params={"p": "x\n#SBATCH --hold\necho injected"})
    w.allocation("a", entrypoint="echo {{ params.p }}", walltime="1h")
    job = w.compile().job("a")
    assert sbatch_directives(job.script) == ["--job-name=a", "--time=01:00:00"]
