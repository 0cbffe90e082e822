"""Value syntax: walltime, memory, arrays, defaults inheritance, params and --set."""

from __future__ import annotations

import pytest

from slurmdag.compiler.compile import compile_text, parse_overrides
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import InputError


@pytest.mark.parametrize(
    "given,seconds",
    [
        (30, 1800),
        ("30", 1800),
        ("90m", 5400),
        ("2h", 7200),
        ("1d12h", 129600),
        ("1h30m", 5400),
        ("45s", 45),
        ("10:30", 630),
        ("01:02:03", 3723),
        ("100:00:00", 360000),
        ("2-03", 2 * 86400 + 3 * 3600),
        ("2-03:04", 2 * 86400 + 3 * 3600 + 240),
        ("2-03:04:05", 2 * 86400 + 3 * 3600 + 245),
    ],
)
def test_walltime_forms(given, seconds):
    assert wt.parse_walltime(given) == seconds


@pytest.mark.parametrize("given", [0, -5, "", "2 hours", "1:2:3:4", "1-25", "1:60", "h", True, 1.5, "1d-2h"])
def test_bad_walltimes(given):
    with pytest.raises(ValueError):
        wt.parse_walltime(given)


@pytest.mark.parametrize(
    "seconds,text", [(60, "00:01:00"), (5400, "01:30:00"), (86400, "1-00:00:00"), (129661, "1-12:01:01")]
)
def test_walltime_canonical_form(seconds, text):
    assert wt.format_walltime(seconds) == text


@pytest.mark.parametrize("given,text", [(1024, "1024M"), ("4G", "4G"), ("500m", "500M"), ("2TB", "2T"), ("16k", "16K")])
def test_memory(given, text):
    assert wt.parse_memory(given) == text


@pytest.mark.parametrize("given", ["0", "4 G", "4GiB", "lots", "-1", True])
def test_bad_memory(given):
    with pytest.raises(ValueError):
        wt.parse_memory(given)


@pytest.mark.parametrize(
    "text,count,throttle",
    [("0-99%20", 100, 20), ("1,3,5", 3, None), ("0-15:4", 4, None), ("1-5,10", 6, None), ("7", 1, None)],
)
def test_array_syntax(text, count, throttle):
    spec = wt.parse_array(text)
    assert (len(spec.indexes), spec.throttle) == (count, throttle)


@pytest.mark.parametrize("text", ["", "%5", "0-99%", "0-99%0", "5-1", "0-10:0", "a-b", "1,,2", "0-4000000", "1;2"])
def test_bad_array_syntax(text):
    with pytest.raises(ValueError):
        wt.parse_array(text)


@pytest.mark.parametrize(
    "text, indexes",
    [
        ("0-3", [0, 1, 2, 3]),
        ("0-7%2", list(range(8))),
        ("1,3-5", [1, 3, 4, 5]),
        ("0-10:5", [0, 5, 10]),
        ("5,1,3-4,4", [1, 3, 4, 5]),  # Slurm's order and repeats do not matter: ascending, each once
        ("0-3,7,10-14:2%4", [0, 1, 2, 3, 7, 10, 12, 14]),  # squeue's pending row "1234_[0-3,7,10-14:2%4]"
    ],
)
def test_array_indexes(text, indexes):
    assert wt.array_indexes(text) == indexes


@pytest.mark.parametrize(
    "indexes, throttle, text",
    [
        ([0, 1, 2, 5, 7, 8], None, "0-2,5,7-8"),
        ([7], None, "7"),
        ([5, 3, 4, 7, 9, 10], 2, "3-5,7,9-10%2"),
        ([0, 0, 1], None, "0-1"),
        ([], None, ""),
    ],
)
def test_format_array(indexes, throttle, text):
    assert wt.format_array(indexes, throttle) == text


@pytest.mark.parametrize("text", ["0-99%20", "1,3,5", "0-15:4", "1-5,10", "7", "3999999", "0-3,7,10-14:2%4"])
def test_array_round_trip(text):
    """format(parse(x)) is the canonical form of x: same indexes and throttle, and formatting is a fixed point."""
    spec = wt.parse_array(text)
    again = wt.parse_array(str(spec))
    assert again == spec
    assert str(again) == str(spec)


def test_array_bounds():
    assert wt.parse_array(f"{wt.MAX_ARRAY_INDEX - 1}").indexes == (wt.MAX_ARRAY_INDEX - 1,)
    with pytest.raises(ValueError, match="maximum"):
        wt.parse_array(f"0-{wt.MAX_ARRAY_INDEX}:{wt.MAX_ARRAY_INDEX}")  # index 0 and the one past the top
    # a step that ends below the top is fine, even if the range's written end is past it
    assert wt.parse_array(f"0-{wt.MAX_ARRAY_INDEX}:{wt.MAX_ARRAY_INDEX - 1}").indexes == (0, wt.MAX_ARRAY_INDEX - 1)
    with pytest.raises(ValueError, match="maximum"):
        wt.parse_array(f"1,{wt.MAX_ARRAY_INDEX}")


@pytest.mark.parametrize(
    "array, limit, text", [("0-9", 3, "0-9%3"), ("0-9%2", 5, "0-9%2"), ("0-9%8", 5, "0-9%5"), ("0-15:4", 2, "0-15:4%2")]
)
def test_with_throttle_keeps_the_lower_limit(array, limit, text):
    assert wt.with_throttle(array, limit) == text


@pytest.mark.parametrize(
    "text,mb", [("4G", 4096), ("500", 500), ("500M", 500), ("1T", 1048576), ("16K", 1), ("2gb", 2048)]
)
def test_memory_megabytes(text, mb):
    assert wt.memory_mb(text) == mb


@pytest.mark.parametrize("text", [None, "", "lots", "4 G", "-1"])
def test_memory_megabytes_of_a_non_size(text):
    assert wt.memory_mb(text) is None


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("1-00:00:00", 86400),
        ("30", 1800),
        ("00:30:00", 1800),
        ("UNLIMITED", None),
        ("INFINITE", None),
        ("NONE", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_slurm_time_as_slurm_prints_it(text, seconds):
    assert wt.parse_slurm_time(text) == seconds


@pytest.mark.parametrize("seconds", [1, 59, 60, 3599, 3600, 86399, 86400, 90061, wt.MAX_SECONDS])
def test_walltime_round_trip(seconds):
    text = wt.format_walltime(seconds)
    assert wt.parse_walltime(text) == seconds
    assert wt.format_walltime(wt.parse_walltime(text)) == text


def test_walltime_bounds():
    assert wt.parse_walltime("365d") == wt.MAX_SECONDS
    with pytest.raises(ValueError, match="longer than a year"):
        wt.parse_walltime("365d1s")
    with pytest.raises(ValueError, match="longer than zero"):
        wt.parse_walltime("0:00")


def test_defaults_are_inherited_and_allocation_keys_win():
    plan = compile_text(
        "name: w\ndefaults: {partition: debug, walltime: 1h, mem: 4G, env: {A: '1', B: '2'}}\n"
        "allocations:\n"
        "  - {name: a, entrypoint: x}\n"
        "  - {name: b, entrypoint: x, partition: gpu, mem_per_cpu: 1G, env: {B: three}}\n"
    )
    assert plan.job("a").options == {"mem": "4G", "partition": "debug"}
    assert plan.job("a").walltime == plan.job("b").walltime == 3600
    # mem_per_cpu replaces the inherited mem (sbatch refuses both), env merges per variable
    assert plan.job("b").options == {"mem-per-cpu": "1G", "partition": "gpu"}
    assert "export A=1\nexport B=three\n" in plan.job("b").script


def test_typed_keys_map_to_sbatch_long_options():
    plan = compile_text(
        "name: w\nallocations:\n  - name: a\n    entrypoint: x\n    nodes: 2-4\n    ntasks: 8\n    ntasks_per_node: 4\n"
        "    cpus_per_task: 2\n    gpus: a100:2\n    gres: gpu:1\n    constraint: 'haswell&ib'\n    exclusive: true\n"
        "    account: proj\n    qos: high\n    reservation: res1\n    workdir: /scratch/x\n    output: out-%j.txt\n"
        "    error: err-%j.txt\n    uenv: prgenv/1:v1\n    sbatch: ['--mail-type=END', '--requeue']\n    retries: 2\n"
    )
    job = plan.job("a")
    assert job.options == {
        "account": "proj", "chdir": "/scratch/x", "constraint": "haswell&ib", "cpus-per-task": "2",
        "error": "err-%j.txt",
        "exclusive": None, "gpus": "a100:2", "gres": "gpu:1", "mail-type": "END", "nodes": "2-4", "ntasks": "8",
        "ntasks-per-node": "4", "output": "out-%j.txt", "qos": "high", "requeue": None, "reservation": "res1",
        "uenv": "prgenv/1:v1",
    }  # fmt: skip
    assert job.retries == 2
    assert "#SBATCH --exclusive\n" in job.script and "#SBATCH --requeue\n" in job.script


def test_params_render_and_set_overrides_parse_as_yaml_scalars():
    text = (
        "name: w\nparams: {lr: 0.01, tag: base}\nallocations:\n"
        "  - {name: a, entrypoint: 'run --lr={{ params.lr * 10 }} --tag={{ params.tag }}'}\n"
    )
    assert "run --lr=0.1 --tag=base\n" in compile_text(text).job("a").script
    plan = compile_text(text, overrides={"lr": "1", "tag": "new: value"})
    assert plan.params == {"lr": 1, "tag": "new: value"}
    assert "run --lr=10 --tag=new: value\n" in plan.job("a").script


def test_parse_overrides():
    assert parse_overrides(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InputError) as info:
        parse_overrides(["novalue", "=3"])
    assert [p.message for p in info.value.problems] == ["invalid --set 'novalue'", "invalid --set '=3'"]


def test_task_groups():
    plan = compile_text(
        "name: w\nallocations:\n  - {name: a, entrypoint: x, tasks: 8}\n"
        "  - {name: b, entrypoint: x, array: '0-99%20'}\n"
        "  - {name: c, entrypoint: x, matrix: {lr: [1, 2], opt: [sgd, adam, true]}}\n"
    )
    assert (plan.job("a").array, plan.job("a").tasks) == ("0-7", 8)
    assert (plan.job("b").array, plan.job("b").tasks) == ("0-99%20", 100)
    c = plan.job("c")
    assert (c.array, c.tasks) == ("0-5", 6)
    assert "  5) export SLURMDAG_MATRIX_LR=2 SLURMDAG_MATRIX_OPT=true ;;\n" in c.script


def test_script_key_keeps_the_body_after_our_directives(write):
    (write("#!/bin/bash\n#SBATCH --nodes=9\necho from-script\n", "job.sh"))
    path = write("name: w\nallocations:\n  - {name: a, script: job.sh, walltime: 5}\n")
    from slurmdag.compiler.compile import compile_file

    job = compile_file(path).job("a")
    script = job.script
    assert job.options == {"nodes": "9"} and job.walltime == 300  # the script's #SBATCH line is merged into ours
    assert (
        script.index("#SBATCH --time=00:05:00") < script.index("set -euo pipefail") < script.rindex("#SBATCH --nodes=9")
    )
    assert script.endswith("pipefail\nunset _slurmdag_e _slurmdag_u _slurmdag_o\n#SBATCH --nodes=9\necho from-script\n")
