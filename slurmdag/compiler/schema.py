"""A JSON Schema for the workflow format, generated from the validator's own key tables (`compiler/spec.py`).

The schema is what editors use (completion, hover, errors as you type, via `# yaml-language-server: $schema=...`);
`slurmdag validate` stays the authority: it also checks what a schema cannot (cycles, unknown parents, sizes of
`corresponding` groups, keys inherited from `defaults`). Draft-07, the version YAML editors support best.
The package ships the generated text as `slurmdag/workflow.schema.json`; a test keeps it equal to `generate()`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from slurmdag.compiler import spec
from slurmdag.model import run_layout
from slurmdag.model import slurm_values as wt

SCHEMA_FILE = "workflow.schema.json"


def _pattern(compiled: re.Pattern[str]) -> str:
    """A Python whole-string pattern (\\A...\\Z) as an ECMA-262 one (^...$)."""
    text = compiled.pattern
    text = text.removeprefix("\\A").removeprefix("^").removesuffix("\\Z").removesuffix("$")
    return f"^{text}$"


NAME = {"type": "string", "pattern": _pattern(spec.NAME_RE), "description": spec.NAME_HINT}
IDENT = _pattern(spec.IDENT_RE)
DIGITS = r"^\s*[0-9]+\s*$"
# what fits on an `#SBATCH --opt=VALUE` line (spec.directive_value refuses the rest)
DIRECTIVE = {"type": "string", "pattern": r"^[^\s\"'\\#\u0000-\u001f\u007f]+$"}
COUNT = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": DIGITS}]}
WALLTIME = {
    "description": f"minutes, or one of: {wt.WALLTIME_FORMS}",
    "oneOf": [
        {"type": "integer", "minimum": 1},
        {
            "type": "string",
            "pattern": r"^\s*(?:(?:[0-9]+-)?[0-9]+(?::[0-9]+){0,2}"
            r"|(?=[0-9])(?:[0-9]+[dD])?(?:[0-9]+[hH])?(?:[0-9]+[mM])?(?:[0-9]+[sS])?)\s*$",
        },
    ],
}
MEMORY = {
    "description": wt.MEMORY_FORMS,
    "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^\s*[0-9]+[KMGTkmgt]?[Bb]?\s*$"}],
}
_RANGE = r"[0-9]+(?:-[0-9]+(?::[0-9]+)?)?"
ARRAY = {
    "description": wt.ARRAY_FORMS,
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": rf"^\s*{_RANGE}(?:,{_RANGE})*(?:%[0-9]+)?\s*$"},
    ],
}
SCALAR = {"type": ["string", "number", "boolean"]}
TEXT = {"type": "string", "pattern": r"\S"}
STRINGS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def _dependencies(key: str) -> dict[str, Any]:
    conditions = spec.CONDITIONS if key == "depends_on" else tuple(c for c in spec.CONDITIONS if c != "corresponding")
    entry = {
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"enum": list(conditions)},
                "description": "{allocation: condition}",
            },
        ]
    }
    return {"oneOf": [{"type": "string"}, {"type": "array", "items": entry}]}


# One schema per allocation key; `generate` fails if the validator knows a key this table does not.
KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": NAME,
    "entrypoint": {**TEXT, "description": "shell code run by the job"},
    "script": {"type": "string", "minLength": 1, "description": "a batch script to run (its #SBATCH lines apply)"},
    "depends_on": _dependencies("depends_on"),
    "depends_on_any": _dependencies("depends_on_any"),
    "tasks": COUNT,
    "array": ARRAY,
    "matrix": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"pattern": IDENT},
        "properties": {
            what: {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "minProperties": 1, "additionalProperties": SCALAR},
                "description": doc,
            }
            for what, doc in (
                ("include", "combinations added as tasks: {key: value} naming every key"),
                ("exclude", "combinations removed: every one matching all the keys named"),
            )
        },
        "additionalProperties": {"type": "array", "minItems": 1, "items": SCALAR},
    },
    "env": {
        "type": "object",
        "propertyNames": {"pattern": "^(?![Ss][Ll][Uu][Rr][Mm][Dd][Aa][Gg]_)" + IDENT[1:]},
        "additionalProperties": SCALAR,
    },
    "setup": STRINGS,
    "outputs": {
        "type": "array",
        "uniqueItems": True,
        "items": {"type": "string", "pattern": _pattern(run_layout.OUTPUT_NAME_RE)},
        "description": "names of the outputs the job publishes (slurmdag-output NAME VALUE); docs/passing-data.md",
    },
    "retries": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "string", "pattern": DIGITS}]},
    "on_failure": {
        "enum": list(spec.ON_FAILURE),
        "description": "stop: this allocation's failure cancels every unfinished job of the DAG",
    },
    "stop_if": {
        "type": "string",
        "pattern": r"\S",
        "description": "stop the DAG early (it ends Completed) when this holds over the allocation's own outputs "
        "after it "
        "succeeded, e.g. `outputs.eval.loss > 5`",
    },
    "sbatch": {
        "oneOf": [
            {"type": "string", "pattern": "^\\s*--"},
            {"type": "array", "items": {"type": "string", "pattern": "^\\s*--"}},
        ],
        "description": 'other sbatch flags, one per entry: "--mail-type=END"',
    },
    "group": {
        "oneOf": [{"type": "string", "pattern": NAME["pattern"]}, {"type": "integer", "minimum": 0}],
        "description": "run as a job step of the group's one Slurm job (docs/workflow-format.md, Groups)",
    },
    "nodes": {"oneOf": [*COUNT["oneOf"], {"type": "string", "pattern": r"^\s*[0-9]+-[0-9]+\s*$"}]},
    "walltime": WALLTIME,
    "partition": DIRECTIVE,
    "account": DIRECTIVE,
    "qos": DIRECTIVE,
    "reservation": DIRECTIVE,
    "ntasks": COUNT,
    "ntasks_per_node": COUNT,
    "cpus_per_task": COUNT,
    "mem": MEMORY,
    "mem_per_cpu": MEMORY,
    "gpus": {"oneOf": [*COUNT["oneOf"], {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+:[0-9]+$"}]},
    "gres": DIRECTIVE,
    "constraint": DIRECTIVE,
    "exclusive": {"oneOf": [{"type": "boolean"}, {"enum": ["user", "mcs", "topo"]}]},
    "workdir": DIRECTIVE,
    "output": DIRECTIVE,
    "error": DIRECTIVE,
    "uenv": DIRECTIVE,
}


def _key(key: str) -> dict[str, Any]:
    try:
        schema = dict(KEY_SCHEMAS[key])
    except KeyError:
        raise AssertionError(f"compiler/schema.py has no schema for the workflow key {key!r}") from None
    option = spec.OPTION_KEYS.get(key)
    if option is not None:
        what = schema.get("description")
        schema["description"] = f"sbatch --{option}" + (f"; {what}" if what else "")
    return schema


def _exclusive(keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"not": {"required": [a, b]}} for i, a in enumerate(keys) for b in keys[i + 1 :]]


def generate() -> dict[str, Any]:
    allocation_keys = {k: _key(k) for k in spec.ALLOCATION_KEYS}
    exclusive = [rule for group in spec.EXCLUSIVE_GROUPS for rule in _exclusive(group)]
    allocation = {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": allocation_keys,
        "allOf": exclusive,
    }
    uses = {
        "description": "a sub-workflow: the allocations of another workflow file, named <name>.<theirs>",
        "type": "object",
        "required": ["name", "uses"],
        "additionalProperties": False,
        "properties": {
            "name": NAME,
            "uses": {"type": "string", "minLength": 1, "description": "its workflow file, relative to this one"},
            "with": {
                "oneOf": [
                    {"type": "object", "propertyNames": {"pattern": IDENT}, "additionalProperties": SCALAR},
                    {"type": "null"},
                ],
                "description": "values for its params",
            },
            "depends_on": allocation_keys["depends_on"],
            "depends_on_any": allocation_keys["depends_on_any"],
        },
    }
    if set(uses["properties"]) != set(spec.USES_KEYS):  # type: ignore[call-overload]
        raise AssertionError("compiler/schema.py and spec.USES_KEYS disagree")
    defaults = {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: v for k, v in allocation_keys.items() if k not in spec.NOT_IN_DEFAULTS},
        "allOf": exclusive,
    }
    top = {
        "name": NAME,
        "description": {"type": "string"},
        "defaults": {"oneOf": [{"$ref": "#/definitions/defaults"}, {"type": "null"}]},
        "params": {
            "oneOf": [
                {"type": "object", "propertyNames": {"pattern": IDENT}, "additionalProperties": SCALAR},
                {"type": "null"},
            ]
        },
        "allocations": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [{"$ref": "#/definitions/allocation"}, {"$ref": "#/definitions/uses"}]},
        },
        "max_concurrent": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
        "auto_array": {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
        "on_failure": {
            "enum": list(spec.ON_FAILURE),
            "description": "the allocations' default: stop makes any failure cancel the whole DAG",
        },
        "fuse": {"oneOf": [{"enum": list(spec.FUSE_MODES)}, {"type": "null"}]},
        "groups": {
            "oneOf": [
                {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [
                            {"type": "object", "additionalProperties": False, "properties": {"walltime": WALLTIME}},
                            {"type": "null"},
                        ]
                    },
                },
                {"type": "null"},
            ]
        },
    }
    missing = set(spec.TOP_KEYS) ^ set(top)
    if missing:
        raise AssertionError(f"compiler/schema.py and spec.TOP_KEYS disagree on {sorted(missing)}")
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "slurmdag workflow",
        "description": "A workflow DAG for `slurmdag` (docs/workflow-format.md). `slurmdag validate` checks more.",
        "type": "object",
        "required": ["name", "allocations"],
        "additionalProperties": False,
        "properties": {k: top[k] for k in spec.TOP_KEYS},
        "definitions": {"allocation": allocation, "defaults": defaults, "uses": uses},
    }


def schema_text() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=True) + "\n"
