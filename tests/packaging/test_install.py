"""What a user gets from `pip install`: the wheel and sdist built from a copy of this repository, the wheel installed
in fresh virtual environments outside it — once with the lowest dependency versions pyproject.toml allows, once
with the newest — running `validate`, `compile`, `schema`, `--help` and more (tests/packaging/smoke.py).

Packages come from this machine's package index (as `pip install` would; CI has the same), so this takes a minute
or two. The floors in pyproject.toml are exactly what the lowest environment installs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).with_name("smoke.py")
# typer's own dependency, pinned to the lowest that the lowest typer accepts (slurmdag does not import click)
LOWEST_EXTRA = ["click==8.0.0"]
_SKIP = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".hypothesis", "*.egg-info", ".ci", "slurm-*.out")


def _copy_ignore(folder: str, names: list[str]) -> set[str]:
    """What a fresh clone would not have: caches, build output, the local cluster's run dirs."""
    skipped = set(_SKIP(folder, names))
    if Path(folder) == REPO:
        skipped |= {n for n in names if n in ("build", "dist")}
    if Path(folder) == REPO / "docker-slurm":
        skipped |= {n for n in names if n == "run" or n.startswith("run-")}
    return skipped


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # PYTHONPATH (set to the checkout by local runs) would make a fresh environment import the checkout instead of
    # the installed wheel; a fresh machine has none.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def _venv(path: Path) -> Path:
    _run([sys.executable, "-m", "venv", path], cwd=path.parent)
    return path / "bin" / "python"


def _pip(python: Path, *args: str) -> None:
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], cwd=python.parent)


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, built from a copy of the repository by setuptools' own build backend."""
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=_copy_ignore)
    builder = _venv(root / "builder")
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    _pip(builder, *requires)
    out = root / "dist"
    # (the backend rewrites sys.argv while it builds: the output folder is read first)
    code = "import sys, setuptools.build_meta as b\nd = sys.argv[1]\n"
    code += "for f in (b.build_sdist, b.build_wheel): print('built:', f(d))"
    log = _run([builder, "-c", code, out], cwd=src).stdout  # setuptools logs to stdout too
    sdist, wheel = re.findall(r"^built: (\S+)$", log, re.MULTILINE)
    return {"sdist": out / sdist, "wheel": out / wheel}


def lowest_pins() -> list[str]:
    """Every dependency of pyproject.toml at its floor: `name>=X` (or `name>=X,<Y`) -> `name==X`."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = []
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)(?:,<[0-9][0-9A-Za-z.]*)?", dep.replace(" ", ""))
        assert m, f"dependency {dep!r} has no plain >= floor"
        pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins + LOWEST_EXTRA


def test_sdist_carries_tests_docs_examples_and_license(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for wanted in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "docs/commands.md",
        "examples/design-example.yaml",
        "tests/unit/conftest.py",
        "tests/integration/conftest.py",
        "tests/packaging/smoke.py",
        "templates/README.md",
        "slurmdag/workflow.schema.json",
        "docker-slurm/up",
    ):
        assert wanted in names, f"the sdist lacks {wanted}"
    assert not [n for n in names if "__pycache__" in n or n.startswith("docker-slurm/run")]


def test_wheel_carries_the_license_schema_and_template(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        metadata = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {"slurmdag/workflow.schema.json", "slurmdag/templates/job.sbatch.j2", "slurmdag/py.typed"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata


@pytest.mark.parametrize("versions", ["lowest", "newest"])
def test_the_wheel_works_in_a_fresh_environment(dists, tmp_path, versions):
    python = _venv(tmp_path / "venv")
    if versions == "lowest":
        _pip(python, str(dists["wheel"]), *lowest_pins())
    else:
        _pip(python, "--upgrade", str(dists["wheel"]))
    work = tmp_path / "work"
    work.mkdir()
    examples = shutil.copytree(REPO / "examples", tmp_path / "examples")  # nothing of the repository is used
    done = _run([python, SMOKE, examples, work], cwd=work)
    assert "smoke OK" in done.stdout
    if versions == "lowest":
        for pin in lowest_pins():
            name, version = pin.split("==")
            assert f"{name.lower()}=={version}" in done.stdout.lower(), done.stdout
