"""Real submission chains (tests/fixtures/bash-chains/real, each with its source): the import must give the graph read
by hand from the chain (expected.yaml), every warning listed there and no other, and YAML that validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slurmdag.compiler.spec import load_workflow
from slurmdag.porting.importer import import_files

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "bash-chains" / "real"
CHAINS = sorted(p for p in REAL.iterdir() if p.is_dir())
KEYS = ("name", "script", "entrypoint", "array", "depends_on", "depends_on_any")


def test_the_corpus_has_at_least_15_real_chains_each_with_its_source():
    assert len(CHAINS) >= 15
    for folder in CHAINS:
        assert "# source: " in (folder / "chain.sh").read_text(), folder.name


def line_of(file: Path, fragment: str | None) -> int | None:
    if fragment is None:
        return None
    hits = [k for k, text in enumerate(file.read_text().split("\n"), 1) if fragment in text]
    assert len(hits) == 1, f"{file.name}: {fragment!r} is on lines {hits}"
    return hits[0]


@pytest.mark.parametrize("folder", CHAINS, ids=lambda p: p.name)
def test_a_real_chain_imports_as_read_by_hand(folder, tmp_path):
    expected = yaml.safe_load((folder / "expected.yaml").read_text())
    result = import_files([str(folder / "chain.sh")], str(folder / "workflow.yaml"))

    got = [{k: a[k] for k in KEYS if k in a} for a in result.workflow["allocations"]]
    assert got == expected["allocations"]

    want = [
        (w.get("file", "chain.sh"), line_of(folder / w.get("file", "chain.sh"), w["at"]), w["says"])
        for w in expected["warnings"]
    ]
    found = [(Path(p.file).name, p.line, p.message) for p in result.warnings]
    unmatched = list(found)
    for file, line, says in want:
        hit = next((f for f in unmatched if f[0] == file and f[1] == line and says in f[2]), None)
        assert hit is not None, f"no warning {says!r} at {file}:{line}; got:\n" + "\n".join(map(str, found))
        unmatched.remove(hit)
    assert not unmatched, "warnings nobody expected:\n" + "\n".join(map(str, unmatched))

    out = folder / "_imported_for_test.yaml"
    out.write_text(result.to_yaml())
    try:
        if expected.get("validates", True):
            assert len(load_workflow(out).allocations) == len(got)
    finally:
        out.unlink()
