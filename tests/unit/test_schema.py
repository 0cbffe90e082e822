"""The JSON Schema of the workflow format: generated from the validator's key tables, shipped in the package,
printed by `slurmdag schema`; every example is valid against it and broken workflows are not."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest

from slurmdag.compiler import schema, spec
from slurmdag.compiler.yamlsrc import parse_yaml
from tests.unit.conftest import EXAMPLES, REPO

VALIDATOR = jsonschema.Draft7Validator(schema.generate())


def _doc(text: str, name: str = "wf.yaml"):
    return parse_yaml(text, name).plain()  # read as slurmdag reads it (YAML 1.2)


def _errors(doc) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(doc)]


def test_schema_is_valid_draft7_and_covers_every_key_the_validator_knows():
    jsonschema.Draft7Validator.check_schema(schema.generate())
    props = schema.generate()["definitions"]["allocation"]["properties"]
    assert set(props) == set(spec.ALLOCATION_KEYS)
    assert set(schema.generate()["properties"]) == set(spec.TOP_KEYS)


def test_shipped_file_and_command_are_the_generated_schema():
    shipped = resources.files("slurmdag").joinpath(schema.SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == schema.schema_text(), "run `slurmdag schema > slurmdag/workflow.schema.json`"
    done = subprocess.run([sys.executable, "-m", "slurmdag", "schema"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == schema.generate()


def _example_files():
    return sorted(EXAMPLES.rglob("*.yaml")) + [REPO / "tests" / "compose" / "workflow.yaml"]


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_is_valid(path):
    assert _errors(_doc(path.read_text(encoding="utf-8"), str(path))) == []


def test_the_documented_workflow_is_valid():
    text = (REPO / "docs" / "workflow-format.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "allocations:" in b]
    assert blocks
    for block in blocks:
        assert _errors(_doc(block)) == [], block


BROKEN = {
    "unknown-top-key": "name: x\nallocation: []\n",
    "missing-name": "allocations:\n  - {name: a, entrypoint: x}\n",
    "allocations-not-a-list": "name: x\nallocations: {a: 1}\n",
    "no-allocations": "name: x\nallocations: []\n",
    "bad-workflow-name": "name: 'my pipeline'\nallocations:\n  - {name: a, entrypoint: x}\n",
    "unknown-allocation-key": "name: x\nallocations:\n  - {name: a, entrypoint: x, gpu: 2}\n",
    "allocation-without-name": "name: x\nallocations:\n  - {entrypoint: x}\n",
    "bad-walltime": "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: soon}\n",
    "zero-walltime": "name: x\nallocations:\n  - {name: a, entrypoint: x, walltime: 0}\n",
    "bad-memory": "name: x\nallocations:\n  - {name: a, entrypoint: x, mem: lots}\n",
    "bad-condition": "name: x\nallocations:\n  - {name: b, entrypoint: x, depends_on: [{a: maybe}]}\n",
    "corresponding-in-any": "name: x\nallocations:\n  - {name: b, entrypoint: x, depends_on_any: [{a: corresponding}]}",
    "zero-tasks": "name: x\nallocations:\n  - {name: a, entrypoint: x, tasks: 0}\n",
    "tasks-and-matrix": "name: x\nallocations:\n  - {name: a, entrypoint: x, tasks: 2, matrix: {k: [1]}}\n",
    "entrypoint-and-script": "name: x\nallocations:\n  - {name: a, entrypoint: x, script: a.sh}\n",
    "empty-matrix-values": "name: x\nallocations:\n  - {name: a, entrypoint: x, matrix: {k: []}}\n",
    "bad-env-name": "name: x\nallocations:\n  - {name: a, entrypoint: x, env: {1X: a}}\n",
    "reserved-env-name": "name: x\nallocations:\n  - {name: a, entrypoint: x, env: {SLURMDAG_X: a}}\n",
    "too-many-retries": "name: x\nallocations:\n  - {name: a, entrypoint: x, retries: 101}\n",
    "exclusive-maybe": "name: x\nallocations:\n  - {name: a, entrypoint: x, exclusive: maybe}\n",
    "yes-is-not-a-boolean": "name: x\nallocations:\n  - {name: a, entrypoint: x, exclusive: yes}\n",
    "space-in-partition": "name: x\nallocations:\n  - {name: a, entrypoint: x, partition: 'a b'}\n",
    "sbatch-not-a-flag": "name: x\nallocations:\n  - {name: a, entrypoint: x, sbatch: [mail-type=END]}\n",
    "bad-array": "name: x\nallocations:\n  - {name: a, entrypoint: x, array: '1-'}\n",
    "depends-on-in-defaults": "name: x\ndefaults: {depends_on: [a]}\nallocations:\n  - {name: a, entrypoint: x}\n",
    "blank-entrypoint": "name: x\nallocations:\n  - {name: a, entrypoint: '  '}\n",
}


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_broken_workflows_are_rejected_by_the_schema_and_the_validator(text, tmp_path):
    from slurmdag.compiler.compile import compile_text
    from slurmdag.model.errors import InputError

    assert _errors(_doc(text)), "the schema accepted it"
    with pytest.raises(InputError):  # the schema never refuses what the validator accepts, here
        compile_text(text, "wf.yaml", base_dir=tmp_path)
