"""The Python API gives the same plan as YAML; graph views; the authoring CLI's exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from slurmdag import InputError, Workflow, compile_file, compile_text
from slurmdag.views.graph_formats import render_graph, to_ascii, to_dot, to_mermaid

from .conftest import EXAMPLES


def training_pipeline() -> Workflow:
    wf = Workflow("training-pipeline")
    pre = wf.allocation(
        "preprocess", "python preprocess.py --input /data/raw --output /data/clean", nodes=2, walltime="2h"
    )
    train = wf.allocation(
        "train", "torchrun --nproc_per_node=4 train.py --data /data/clean", nodes=64, walltime="72h", depends_on=[pre]
    )
    wf.allocation(
        "evaluate",
        "python evaluate.py --checkpoint /checkpoints/latest",
        nodes=1,
        walltime="1h",
        depends_on=[train.success()],
    )
    wf.allocation(
        "notify-failure", "python notify.py --status=failed", nodes=1, walltime="10m", depends_on=[train.failure()]
    )
    return wf


def test_api_gives_the_same_plan_as_the_yaml_example():
    from_yaml = compile_file(EXAMPLES / "training-pipeline.yaml")
    from_yaml.source = None
    assert training_pipeline().compile() == from_yaml


def test_api_to_yaml_compiles_to_the_same_plan():
    wf = Workflow("w", defaults={"partition": "debug"}, params={"n": 2})
    a = wf.allocation("a", "echo {{ params.n }}", matrix={"x": (1, 2)}, env={"K": "v"})
    b = wf.allocation("b", "true", tasks=2)
    wf.allocation("c", "true", depends_on=[(a, "any")], depends_on_any=[b, "a"] and [b])
    plan = wf.compile()
    assert plan == compile_text(wf.to_yaml(), "<python>")
    assert [j.name for j in plan.jobs] == ["a", "b", "c"]


def test_api_errors_name_the_python_path():
    wf = Workflow("w")
    wf.allocation("a", "true", walltime="soon", depends_on=["missing"])
    with pytest.raises(InputError) as info:
        wf.compile()
    assert [f"{p.location()}: {p.message}" for p in info.value.problems] == [
        "<python>:allocations[0].walltime: invalid walltime 'soon': not one of the accepted forms",
        "<python>:allocations[0].depends_on[0]: unknown allocation 'missing' in depends_on of 'a'",
    ]


def test_graph_views():
    plan = compile_file(EXAMPLES / "design-example.yaml")
    ascii_text = to_ascii(plan, labels={"train": "(Running)"})
    # conditions in brackets after the name, as status --graph writes them; plain success edges carry none
    assert "│   └── train  (Running)\n" in ascii_text
    assert "│       └── notify-failure [failure]\n" in ascii_text
    assert "└── post [corresponding]  array 0-7" in ascii_text
    assert "└── merge [any of: success]  (see above)" in ascii_text
    dot = to_dot(plan)
    assert dot.startswith('digraph "training-pipeline" {\n') and dot.endswith("}\n")
    assert '  "train" -> "notify-failure" [label="failure"];\n' in dot
    assert '  "fetch-a" -> "merge" [label="any of: success", style=dashed];\n' in dot
    mer = to_mermaid(plan)
    assert mer.startswith("flowchart TD\n")
    assert '  n1 -->|"failure"| n4\n' in mer
    assert render_graph(plan, "dot") == dot


def test_dot_is_accepted_by_graphviz_when_installed(tmp_path):
    import shutil

    if not shutil.which("dot"):
        pytest.skip("graphviz not installed")
    text = to_dot(compile_file(EXAMPLES / "sweep.yaml"))
    done = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "slurmdag", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_cli_validate_ok_and_invalid(write):
    ok = cli("validate", EXAMPLES / "design-example.yaml")
    assert (ok.returncode, ok.stdout) == (0, f"{EXAMPLES / 'design-example.yaml'}: valid (8 allocations)\n")
    bad_path = write(
        "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: soon}\n  - {name: a, entrypoint: y}\n"
    )
    bad = cli("validate", bad_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[0] == f"{bad_path}:3:40: invalid walltime 'soon': not one of the accepted forms"
    assert f"{bad_path}:4:12: duplicate allocation name 'a'" in bad.stderr
    assert cli("validate", "/nonexistent.yaml").returncode == 2
    assert cli("validate", EXAMPLES / "design-example.yaml", "--set", "nope=1").returncode == 2


def test_cli_compile_writes_plan_and_scripts(tmp_path):
    out = tmp_path / "out"
    done = cli("compile", EXAMPLES / "sweep.yaml", "-o", out, "--set", "epochs=7")
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{j['name']}.sbatch" for j in plan["jobs"]] + ["plan.json"])
    assert "report+any.sbatch" in names
    assert "export EPOCHS=7\n" in (out / "sweep.sbatch").read_text()
    assert f"wrote {out / 'plan.json'}" in done.stdout


def test_cli_compile_uses_a_user_template_dir_first(tmp_path):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "job.sbatch.j2").write_text(
        "#!/bin/bash\n{% for d in job.directives %}#SBATCH {{ d }}\n{% endfor %}# custom {{ job.name }}\n"
        "{{ job.entrypoint }}\n"
    )
    done = cli("compile", EXAMPLES / "training-pipeline.yaml", "-o", tmp_path / "o", "--template-dir", tdir)
    assert done.returncode == 0, done.stderr
    assert "\n# custom train\n" in (tmp_path / "o" / "train.sbatch").read_text()


def test_cli_graph_formats():
    for fmt, start in (("ascii", "training-pipeline\n"), ("dot", "digraph"), ("mermaid", "flowchart TD")):
        done = cli("graph", EXAMPLES / "training-pipeline.yaml", "--format", fmt)
        assert done.returncode == 0 and done.stdout.startswith(start), done.stderr
    bad = cli("graph", EXAMPLES / "training-pipeline.yaml", "--format", "png")
    assert bad.returncode == 2 and "unknown --format 'png'" in bad.stderr


def test_public_names_resolve_from_the_package():
    import slurmdag

    names = set(slurmdag.__all__) - {"__version__"}
    assert names == set(slurmdag._PUBLIC)
    for name in names:
        assert getattr(slurmdag, name).__name__ == name
    with pytest.raises(AttributeError):
        slurmdag.no_such_name  # noqa: B018
