"""The workflow model and its validation: Nodes (from YAML or Python) -> WorkflowSpec, or every problem at once.

Checks here are about one value or one allocation at a time; checks across allocations (names, cycles,
corresponding sizes, limits) live in `graph`. Reading the workflow file and `script:` files is the only I/O, done by
`load_workflow`; `build_workflow` is pure apart from reading `script:` files through the given directory.

A `script:` allocation's `#SBATCH` block is read here (problems point into the script file), and merged with the
allocation's own options (the workflow wins), so a script's `--array` makes a task group before `graph` checks sizes.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmdag.compiler import stop_if as stop_if_lang
from slurmdag.compiler.script_directives import ScriptDirectives, interpreter, read_directives, shell_kind
from slurmdag.compiler.script_merge import Merged, merge
from slurmdag.compiler.uses import SubWorkflow, prefix, resolve, roots_and_leaves
from slurmdag.compiler.yamlsrc import MapNode, Node, ScalarNode, SeqNode, bool_hint, parse_yaml, type_name
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import InputError, Problem, shown
from slurmdag.model.plan import Condition
from slurmdag.model.run_layout import OUTPUT_NAME_HINT, OUTPUT_NAME_RE
from slurmdag.model.sbatch_options import (
    BY_SHORT,
    CLIENT_ONLY,
    MAPPED_OWNED,
    OWNED,
    OWNED_HINT,
    check_long_flag,
    resolve_long,
)

# Patterns are anchored with \A...\Z: `$` also matches before a final newline, and a name ending in one would end
# the #SBATCH line it is written on.
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
NAME_HINT = "names are 1-64 characters: letters, digits, '-', '_' and '.', starting with a letter or digit"
IDENT_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
CONDITIONS = ("success", "failure", "any", "corresponding")

TOP_KEYS = (
    "name", "description", "defaults", "params", "allocations", "max_concurrent", "auto_array", "on_failure",
    "fuse", "groups",
)  # fmt: skip
ON_FAILURE = ("continue", "stop")  # what a failed allocation does to the rest of its DAG (docs/semantics.md)
FUSE_MODES = ("none", "auto")
GROUP_KEYS = ("walltime",)  # what `groups: {NAME: {...}}` may say about a group

# Allocation keys that become one sbatch long option each.
OPTION_KEYS = {
    "nodes": "nodes",
    "walltime": "time",
    "partition": "partition",
    "account": "account",
    "qos": "qos",
    "reservation": "reservation",
    "ntasks": "ntasks",
    "ntasks_per_node": "ntasks-per-node",
    "cpus_per_task": "cpus-per-task",
    "mem": "mem",
    "mem_per_cpu": "mem-per-cpu",
    "gpus": "gpus",
    "gres": "gres",
    "constraint": "constraint",
    "exclusive": "exclusive",
    "workdir": "chdir",
    "output": "output",
    "error": "error",
    "uenv": "uenv",
}
OTHER_KEYS = (
    "name", "entrypoint", "script", "depends_on", "depends_on_any",
    "tasks", "array", "matrix", "env", "setup", "retries", "sbatch", "on_failure", "outputs", "group", "stop_if",
)  # fmt: skip
ALLOCATION_KEYS = tuple(OTHER_KEYS) + tuple(OPTION_KEYS)
NOT_IN_DEFAULTS = ("name", "depends_on", "depends_on_any", "outputs", "group", "stop_if")
# At most one key of each group per allocation; an allocation setting one of them ignores the group in defaults.
EXCLUSIVE_GROUPS = (("entrypoint", "script"), ("tasks", "array", "matrix"), ("mem", "mem_per_cpu"))

_FLAG_RE = re.compile(r"\A--([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?\Z", re.DOTALL)
# Values written after `#SBATCH --opt=`: sbatch splits directive lines on blanks and strips quotes, so anything that
# could end the value (or the line) is refused rather than escaped.
_DIRECTIVE_UNSAFE = re.compile(r"[\s\"'\\#\x00-\x1f\x7f]")


# Work a small file can ask for, bounded before it is done (docs/workflow-format.md, "Limits").
MAX_TASKS = 1_000_000  # array tasks in one workflow, summed over its task groups
MAX_MATRIX_COMBINATIONS = 100_000  # one line of the batch script each


# --- the model -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepSpec:
    parent: str
    condition: Condition  # one of CONDITIONS
    node: Node  # where the reference was written
    file: str | None = None  # the file `node` is in, when not the allocation's own (a `uses:` allocation's deps)


@dataclass
class AllocationSpec:
    name: str
    index: int  # position in the file: breaks ties in the topological order
    node: Node  # the allocation's mapping
    entrypoint: str | None = None
    script_path: str | None = None  # as written in the workflow
    script_body: str | None = None  # the script file's whole text
    script: ScriptDirectives | None = None  # its #SBATCH block, body and shebang
    merged: Merged | None = None  # script options + workflow options, with where each came from
    options: dict[str, str | None] = field(default_factory=dict)  # sbatch long option -> value (None: bare flag)
    walltime: int | None = None  # seconds (slurm_values); never a "time" entry in `options`
    depends_on: list[DepSpec] = field(default_factory=list)
    depends_on_any: list[DepSpec] = field(default_factory=list)
    tasks: int | None = None
    array: str | None = None  # the --array value (also derived from tasks / matrix)
    indexes: frozenset[int] | None = None  # array indexes; None for a single job
    matrix: Matrix | None = None
    env: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    retries: int = 0
    on_failure: str | None = None  # "stop" | "continue"; None: the workflow's `on_failure`
    outputs: list[str] = field(default_factory=list)  # names of the outputs each of its jobs must publish
    group: str | None = None  # `group: NAME`: run as a job step of the group's one Slurm job
    stop_if: tuple[str, stop_if_lang.Condition] | None = None  # `stop_if:` text and its parsed condition
    where: dict[str, Node] = field(default_factory=dict)  # key (or "env.K", "setup[i]") -> node of its value
    file: str = ""  # the file its nodes are in: the workflow's, or a sub-workflow's (`uses:`)
    params: dict[str, Any] | None = (
        None  # a sub-workflow's allocations: its params (with `with:`); None: the workflow's
    )
    decided_at: tuple[str, Node] | None = None  # where its `on_failure` was set (file, node), for problems

    @property
    def is_task_group(self) -> bool:
        return self.indexes is not None

    def matrix_rows(self) -> list[tuple[str, ...]]:
        """The matrix's combinations: row i is array task i."""
        return list(self.matrix.rows) if self.matrix else []


@dataclass
class GroupSpec:
    """What the top-level `groups:` mapping says about one group (its members say `group: NAME`)."""

    name: str
    node: Node  # the group's key in `groups:`
    walltime: int | None = None  # seconds; None: the sum along the members' longest path


@dataclass
class WorkflowSpec:
    name: str
    file: str  # as given by the caller; used in every Problem
    allocations: list[AllocationSpec]
    params: dict[str, Any] = field(default_factory=dict)
    param_nodes: dict[str, Node] = field(default_factory=dict)
    node: Node | None = None  # the top-level mapping
    allocations_node: Node | None = None
    warnings: list[Problem] = field(default_factory=list)  # worth showing, not worth refusing (script notes)
    max_concurrent: int | None = None  # at most this many of the DAG's jobs (and tasks) running at once
    auto_array: bool | None = None  # pack siblings into array jobs (compiler/packing.py); None: the site's default
    on_failure: str = "continue"  # the workflow's default for allocations that do not set their own
    subworkflows: list[SubWorkflow] = field(default_factory=list)  # every `uses:`, nested ones included
    fuse: str = "none"  # "auto": group maximal chains of equal allocations (compiler/grouping.py)
    fuse_node: Node | None = None
    groups: dict[str, GroupSpec] = field(default_factory=dict)  # `groups:` entries, by group name

    def by_name(self) -> dict[str, AllocationSpec]:
        return {a.name: a for a in self.allocations}


# --- problems ------------------------------------------------------------------------------------------------------


def problem_at(file: str, node: Node | None, message: str, hint: str | None = None) -> Problem:
    """A Problem at a node: file:line:col for YAML, file:path for data built in Python."""
    if node is None:
        return Problem(message, file, hint=hint)
    if node.line is None:
        return Problem(message, f"{file}:{node.path}" if node.path else file, hint=hint)
    return Problem(message, file, node.line, node.col, hint)


def did_you_mean(word: object, choices: Any) -> str | None:
    if len(str(word)) > 100:  # no name is that long, and comparing it with every choice would take a while
        return None
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


class _BadValueError(Exception):
    """A value is wrong; `node` says where (defaults to the value being parsed)."""

    def __init__(self, message: str, hint: str | None = None, node: Node | None = None):
        super().__init__(message)
        self.message, self.hint, self.node = message, hint, node


# --- value parsers: (key, node, ctx) -> value, raise _BadValueError ------------------------------------------------


def _want_str(key: str, node: Node, allow_int: bool = False) -> str:
    v = node.value
    if isinstance(node, ScalarNode) and isinstance(v, str):
        return v
    if allow_int and isinstance(node, ScalarNode) and isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise _BadValueError(f"`{key}` must be a string, not {type_name(node)}")


LINE_KEYS = ("entrypoint", "setup")  # written into the script as whole lines, unquoted


def _script_text(key: str, text: str) -> str:
    """Text written into the batch script (entrypoint, setup, env and matrix values)."""
    # Entrypoint and setup are written as lines of the script: a carriage return at their end becomes a DOS line
    # break too (env and matrix values are quoted, so theirs is followed by a quote).
    if "\r\n" in text or (text.endswith("\r") and key.split(".")[0] in LINE_KEYS):
        raise _BadValueError(
            f"`{key}` contains a DOS line break (\\r\\n)"
            if "\r\n" in text
            else f"`{key}` ends with a carriage return (\\r), which the script's line break turns into \\r\\n",
            "sbatch refuses a batch script that holds one anywhere; use \\n line breaks",
        )
    return _no_nul(key, text)


CRLF_HINT = "sbatch refuses a batch script that holds one anywhere; use \\n line breaks"


def _no_nul(key: str, text: str) -> str:
    if "\x00" in text:
        raise _BadValueError(f"`{key}` contains a NUL character", "NUL bytes cannot appear in a batch script")
    return text


def directive_value(key: str, text: str) -> str:
    """A value safe to write on an `#SBATCH` line (raises _BadValueError)."""
    if not text:
        raise _BadValueError(f"`{key}` is empty")
    bad = _DIRECTIVE_UNSAFE.search(text)
    if bad:
        ch = bad.group()
        shown = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space", "\x00": "a NUL"}.get(
            ch, f"{ch!r}" if ch.isprintable() else f"character U+{ord(ch):04X}"
        )
        raise _BadValueError(
            f"`{key}` contains {shown}, which cannot appear in an #SBATCH directive",
            "sbatch splits directive lines on blanks and strips quotes; "
            "use a value without whitespace, quotes, backslashes, '#' or control characters",
        )
    return text


def _p_text(key: str, node: Node, ctx: _Ctx) -> str:
    text = _script_text(key, _want_str(key, node))
    if not text.strip():
        raise _BadValueError(f"`{key}` is empty")
    return text


def _p_directive(key: str, node: Node, ctx: _Ctx) -> str:
    return directive_value(key, _want_str(key, node, allow_int=True))


def _p_positive_int(key: str, node: Node, ctx: _Ctx, minimum: int = 1) -> int:
    v = node.value
    if isinstance(node, ScalarNode) and isinstance(v, str) and v.strip().isascii() and v.strip().isdigit():
        v = int(v.strip())
    if not isinstance(node, ScalarNode) or isinstance(v, bool) or not isinstance(v, int):
        raise _BadValueError(f"`{key}` must be an integer, not {type_name(node)}")
    if v < minimum:
        raise _BadValueError(f"`{key}` must be at least {minimum}, not {v}")
    return v


def _p_count(key: str, node: Node, ctx: _Ctx) -> str:
    return str(_p_positive_int(key, node, ctx))


def _p_nodes(key: str, node: Node, ctx: _Ctx) -> str:
    if isinstance(node.value, str) and re.fullmatch(r"\d+-\d+", node.value.strip()):
        lo, hi = (int(x) for x in node.value.strip().split("-"))
        if lo < 1 or hi < lo:
            raise _BadValueError(f"invalid node range {shown(node.value)}", 'write "MIN-MAX" with 1 <= MIN <= MAX')
        return f"{lo}-{hi}"
    return str(_p_positive_int(key, node, ctx))


def _p_walltime(key: str, node: Node, ctx: _Ctx) -> int:
    if not isinstance(node, ScalarNode):
        raise _BadValueError(
            f"`{key}` must be a number of minutes or a string, not {type_name(node)}",
            f"accepted forms: {wt.WALLTIME_FORMS}",
        )
    try:
        return wt.parse_walltime(node.value)
    except ValueError as e:
        raise _BadValueError(
            f"invalid walltime {shown(node.value)}: {e}", f"accepted forms: {wt.WALLTIME_FORMS}"
        ) from None


def _p_memory(key: str, node: Node, ctx: _Ctx) -> str:
    if not isinstance(node, ScalarNode):
        raise _BadValueError(f"`{key}` must be a memory size, not {type_name(node)}", f"use {wt.MEMORY_FORMS}")
    try:
        return wt.parse_memory(node.value)
    except ValueError as e:
        raise _BadValueError(f"invalid `{key}`: {e}", f"use {wt.MEMORY_FORMS}") from None


def _p_gpus(key: str, node: Node, ctx: _Ctx) -> str:
    if isinstance(node.value, str) and not node.value.strip().isdigit():
        text = directive_value(key, node.value)
        if not re.fullmatch(r"([A-Za-z0-9_.-]+:)?\d+", text):
            raise _BadValueError(
                f"invalid `gpus` value {shown(text)}", 'use a count (4) or "TYPE:COUNT" (e.g. "a100:4")'
            )
        return text
    return _p_count(key, node, ctx)


def _p_exclusive(key: str, node: Node, ctx: _Ctx) -> str | bool | None:
    v = node.value
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v in ("user", "mcs", "topo"):
        return v
    raise _BadValueError('`exclusive` must be true, false, "user", "mcs" or "topo"', bool_hint(v))


def _p_deps(key: str, node: Node, ctx: _Ctx) -> list[DepSpec]:
    items = node.value if isinstance(node, SeqNode) else [node] if isinstance(node.value, str) else None
    if items is None:
        raise _BadValueError(
            f"`{key}` must be a list of allocation names, not {type_name(node)}",
            "write e.g. `depends_on: [prepare, {train: failure}]`",
        )
    if key == "depends_on_any" and not items:
        raise _BadValueError(
            "`depends_on_any` is empty",
            "it waits for any one of the allocations listed: list at least one, or remove the key",
        )
    deps: list[DepSpec] = []
    for item in items:
        if isinstance(item, ScalarNode) and isinstance(item.value, str):
            deps.append(DepSpec(item.value, "success", item))
        elif isinstance(item, MapNode) and item.value:
            for parent, cond_node in item.value.items():
                key_node = item.keys[parent]
                if not isinstance(parent, str):
                    ctx.bad(key_node, f"allocation name must be a string, not {type_name(key_node)}")
                    continue
                cond = cond_node.value
                if not isinstance(cond_node, ScalarNode) or cond not in CONDITIONS:
                    hint = did_you_mean(cond, CONDITIONS) if isinstance(cond, str) else None
                    ctx.bad(
                        cond_node,
                        f"unknown condition {shown(cond)} for {shown(parent)}"
                        if isinstance(cond_node, ScalarNode)
                        else f"condition for {shown(parent)} must be a string, not {type_name(cond_node)}",
                        (hint + " " if hint else "") + f"conditions: {', '.join(CONDITIONS)}",
                    )
                    continue
                deps.append(DepSpec(parent, cond, key_node))
        else:
            ctx.bad(item, f"each `{key}` entry must be a name or {{name: condition}}, not {type_name(item)}")
    return deps


def _p_array(key: str, node: Node, ctx: _Ctx) -> tuple[str, int]:
    """The --array text and how many tasks it names (expanded later, within the workflow's task budget)."""
    v = node.value
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(node, ScalarNode) or not isinstance(v, str):
        raise _BadValueError(
            f'`array` must be a string like "0-99%20", not {type_name(node)}', f"accepted: {wt.ARRAY_FORMS}"
        )
    text = v.strip()
    try:
        return text, wt.array_size(text)
    except ValueError as e:
        raise _BadValueError(f"invalid array {shown(text)}: {e}", f"accepted: {wt.ARRAY_FORMS}") from None


MATRIX_LISTS = ("include", "exclude")  # reserved matrix keys: explicit combinations (docs/workflow-format.md)


@dataclass(frozen=True)
class Matrix:
    """A task group's parameter table: `keys` in file order, `rows[i]` the values of array task i."""

    keys: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _p_matrix(key: str, node: Node, ctx: _Ctx) -> Matrix:
    """The cartesian product of the value lists, minus the `exclude` entries, plus the `include` entries."""
    if not isinstance(node, MapNode) or not node.value:
        raise _BadValueError(f"`matrix` must be a non-empty mapping of name -> list of values, not {type_name(node)}")
    axes: list[tuple[str, list[str]]] = []
    seen_env: dict[str, str] = {}
    reported = len(ctx.problems)
    for k, values in node.value.items():
        key_node = node.keys[k]
        if k in MATRIX_LISTS:
            continue
        if not isinstance(k, str) or not IDENT_RE.match(k):
            ctx.bad(key_node, f"invalid matrix key {shown(k)}", "matrix keys become env vars: letters, digits and '_'")
            continue
        if k.upper() in seen_env:
            ctx.bad(
                key_node,
                f"matrix keys {shown(seen_env[k.upper()])} and {shown(k)} give the same env var "
                f"SLURMDAG_MATRIX_{k.upper()}",
            )
            continue
        seen_env[k.upper()] = k
        if not isinstance(values, SeqNode) or not values.value:
            ctx.bad(values, f"matrix key {shown(k)} needs a non-empty list of values, not {type_name(values)}")
            continue
        texts = []
        for item in values.value:
            try:
                texts.append(_script_text(f"matrix.{k}", scalar_text(item)))
            except _BadValueError as e:
                ctx.bad(item, e.message, e.hint)
        axes.append((k, texts))
    size = math.prod(len(v) for _, v in axes) if axes else 0
    if size > MAX_MATRIX_COMBINATIONS:  # checked before anything is expanded
        raise _BadValueError(
            f"the matrix has {size:,} combinations, more than {MAX_MATRIX_COMBINATIONS:,}",
            "every combination is a line of the batch script (Slurm refuses scripts over 4 MB by default): "
            "sweep fewer values, or let each task read its values from a file",
        )
    keys = [k for k, _ in axes]
    rows: list[tuple[str, ...]] = list(itertools.product(*(v for _, v in axes))) if axes else []
    exclude = node.value.get("exclude")
    if exclude is not None:
        if not axes:
            ctx.bad(node.keys["exclude"], "`exclude` needs value lists to exclude from", _MATRIX_HINT)
        else:
            for entry, combo in _matrix_entries("exclude", exclude, keys, ctx, whole=False):
                kept = [r for r in rows if any(r[keys.index(k)] != v for k, v in combo.items())]
                if len(kept) == len(rows):
                    ctx.bad(entry, "this `exclude` entry matches no combination of the matrix", _MATRIX_HINT)
                rows = kept
    include = node.value.get("include")
    if include is not None:
        if not keys and isinstance(include, SeqNode) and include.value and isinstance(include.value[0], MapNode):
            first = include.value[0]
            for k in first.value:
                if isinstance(k, str) and IDENT_RE.match(k) and k.upper() not in seen_env:
                    seen_env[k.upper()] = k
                    keys.append(k)
                else:
                    ctx.bad(first.keys[k], f"invalid matrix key {shown(k)}", "letters, digits and '_', once each")
        present = set(rows)
        for entry, combo in _matrix_entries("include", include, keys, ctx, whole=True):
            row = tuple(combo[k] for k in keys)
            if row in present:
                ctx.bad(entry, "this `include` entry is already a combination of the matrix", _MATRIX_HINT)
                continue
            present.add(row)
            rows.append(row)
    if not rows and len(ctx.problems) == reported:
        raise _BadValueError("the matrix has no combinations left", _MATRIX_HINT)
    if len(rows) > MAX_MATRIX_COMBINATIONS:
        raise _BadValueError(f"the matrix has {len(rows):,} combinations, more than {MAX_MATRIX_COMBINATIONS:,}")
    return Matrix(tuple(keys), tuple(rows))


_MATRIX_HINT = (
    "`include` adds whole combinations ({key: value, ...} naming every key), `exclude` removes the combinations "
    "matching all the keys it names"
)


def _matrix_entries(
    what: str, node: Node, keys: list[str], ctx: _Ctx, whole: bool
) -> Iterable[tuple[Node, dict[str, str]]]:
    """The valid entries of an `include`/`exclude` list, each as (its node, {key: value text})."""
    if not isinstance(node, SeqNode) or not node.value:
        ctx.bad(node, f"`matrix.{what}` must be a non-empty list of {{key: value}} mappings, not {type_name(node)}")
        return
    for entry in node.value:
        if not isinstance(entry, MapNode) or not entry.value:
            ctx.bad(entry, f"each `{what}` entry must be a mapping of matrix key -> value, not {type_name(entry)}")
            continue
        combo: dict[str, str] = {}
        ok = True
        for k, vnode in entry.value.items():
            if k not in keys:
                hint = did_you_mean(k, keys) if isinstance(k, str) else None
                ctx.bad(entry.keys[k], f"{shown(k)} is not a key of the matrix ({', '.join(keys)})", hint)
                ok = False
                continue
            try:
                combo[k] = _script_text(f"matrix.{k}", scalar_text(vnode))
            except _BadValueError as e:
                ctx.bad(vnode, e.message, e.hint)
                ok = False
        missing = [k for k in keys if k not in entry.value]
        if whole and missing and ok:
            ctx.bad(entry, f"this `include` entry does not set {', '.join(missing)}", _MATRIX_HINT)
            ok = False
        if ok:
            yield entry, combo


def scalar_text(node: Node) -> str:
    """A scalar as the text a shell variable would hold (true/false, not True/False)."""
    v = node.value
    if not isinstance(node, ScalarNode) or v is None:
        raise _BadValueError(f"expected a string, number or boolean, not {type_name(node)}")
    if isinstance(v, bool):
        return "true" if v else "false"
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, (str, int, float)):
        return str(v)
    raise _BadValueError(f"expected a string, number or boolean, not {type_name(node)}")


def _p_env(key: str, node: Node, ctx: _Ctx) -> dict[str, tuple[str, Node]]:
    if not isinstance(node, MapNode):
        raise _BadValueError(f"`env` must be a mapping of NAME: value, not {type_name(node)}")
    env: dict[str, tuple[str, Node]] = {}
    for k, v in node.value.items():
        key_node = node.keys[k]
        if not isinstance(k, str) or not IDENT_RE.match(k):
            ctx.bad(
                key_node,
                f"invalid environment variable name {shown(k)}",
                "use letters, digits and '_', not starting with a digit",
            )
            continue
        if k.upper().startswith("SLURMDAG_"):
            ctx.bad(key_node, f"environment variable {shown(k)} uses the reserved prefix SLURMDAG_")
            continue
        try:
            env[k] = (_script_text(f"env.{k}", scalar_text(v)), v)
        except _BadValueError as e:
            ctx.bad(v, e.message if e.message.startswith("`") else f"env value for {shown(k)}: {e.message}", e.hint)
    return env


def _p_setup(key: str, node: Node, ctx: _Ctx) -> list[tuple[str, Node]]:
    items = node.value if isinstance(node, SeqNode) else [node]
    lines: list[tuple[str, Node]] = []
    for item in items:
        if not isinstance(item, ScalarNode) or not isinstance(item.value, str):
            ctx.bad(item, f"`setup` must be a string or a list of strings, not {type_name(item)}")
            continue
        try:
            lines.append((_script_text("setup", item.value), item))
        except _BadValueError as e:
            ctx.bad(item, e.message, e.hint)
    return lines


def _p_on_failure(key: str, node: Node, ctx: _Ctx) -> str:
    v = node.value
    if not isinstance(node, ScalarNode) or v not in ON_FAILURE:
        hint = did_you_mean(v, ON_FAILURE) if isinstance(v, str) else None
        raise _BadValueError(
            f"`on_failure` must be one of {', '.join(ON_FAILURE)}, "
            f"not {shown(v) if isinstance(node, ScalarNode) else type_name(node)}",
            (hint + " " if hint else "") + "stop: the allocation's failure cancels every unfinished job of the DAG",
        )
    return str(v)


def _p_outputs(key: str, node: Node, ctx: _Ctx) -> list[str]:
    items = node.value if isinstance(node, SeqNode) else [node]
    names: list[str] = []
    for item in items:
        if not isinstance(item, ScalarNode) or not isinstance(item.value, str):
            ctx.bad(item, f"`outputs` must be a list of output names, not {type_name(item)}", OUTPUT_NAME_HINT)
        elif not OUTPUT_NAME_RE.match(item.value):
            ctx.bad(item, f"invalid output name {shown(item.value)}", OUTPUT_NAME_HINT)
        elif item.value in names:
            ctx.bad(item, f"output {shown(item.value)} is declared twice")
        else:
            names.append(item.value)
    return names


def _p_name(key: str, node: Node) -> str:
    text = _want_str(key, node, allow_int=True)
    if not NAME_RE.match(text):
        raise _BadValueError(f"invalid {key} name {shown(text)}", NAME_HINT)
    return text


def _p_stop_if(key: str, node: Node, ctx: _Ctx) -> tuple[str, stop_if_lang.Condition]:
    text = _want_str(key, node)
    bad = next((ch for ch in text if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise _BadValueError(f"`stop_if` contains the control character U+{ord(bad):04X}", stop_if_lang.HINT)
    try:
        return text, stop_if_lang.parse(text)
    except stop_if_lang.StopIfSyntaxError as e:
        raise _BadValueError(
            f"invalid `stop_if` (at character {e.offset + 1}): {e.message}", stop_if_lang.HINT
        ) from None


def _p_retries(key: str, node: Node, ctx: _Ctx) -> int:
    n = _p_positive_int(key, node, ctx, minimum=0)
    if n > 100:
        raise _BadValueError(f"`retries` must be at most 100, not {n}")
    return n


def _p_sbatch(key: str, node: Node, ctx: _Ctx) -> dict[str, tuple[str | None, Node]]:
    items = node.value if isinstance(node, SeqNode) else [node] if isinstance(node.value, str) else None
    if items is None:
        raise _BadValueError(f'`sbatch` must be a list of flags like "--mail-type=END", not {type_name(node)}')
    owned_by_keys = {opt: k for k, opt in OPTION_KEYS.items()}
    flags: dict[str, tuple[str | None, Node]] = {}
    for item in items:
        if not isinstance(item, ScalarNode) or not isinstance(item.value, str):
            ctx.bad(item, f"each `sbatch` entry must be a string, not {type_name(item)}")
            continue
        text = item.value.strip()
        m = _FLAG_RE.match(text)
        if not m:
            short = re.match(r"\A-([A-Za-z])", text)
            letter = BY_SHORT.get(short.group(1)) if short else None
            if letter is not None and letter.long in OWNED:
                ctx.bad(item, f"sbatch flag {shown(text)} (--{letter.long}) is set by slurmdag", OWNED_HINT)
            elif letter is not None and letter.long in CLIENT_ONLY:
                problem = check_long_flag(letter.long, None)[1]
                assert problem is not None
                ctx.bad(
                    item,
                    problem.message.replace(f"--{letter.long}", f"{shown(text)} (--{letter.long})", 1),
                    problem.hint,
                )
            else:
                long_form = f'"--{letter.long}=..."' if letter is not None else '"--name=value" or "--name"'
                ctx.bad(item, f"invalid sbatch flag {shown(text)}", f"write one long flag per entry: {long_form}")
            continue
        # resolved as sbatch resolves it (aliases, unique prefixes): `--partitio=x` is --partition
        opt, problem = check_long_flag(m.group(1), m.group(2))
        if problem is not None:
            if problem.fatal:
                ctx.bad(item, problem.message, problem.hint)
                continue
            ctx.warnings.append(problem_at(ctx.file, item, problem.message, problem.hint))
        name, value = (opt.long if opt else m.group(1)), m.group(2)
        spelled = f"--{name}" if name == m.group(1) else f"--{m.group(1)} (--{name})"
        if name in owned_by_keys:
            ctx.bad(
                item,
                f"sbatch flag {spelled} duplicates the `{owned_by_keys[name]}` key",
                f"set `{owned_by_keys[name]}:` instead",
            )
            continue
        if name in flags:
            ctx.bad(item, f"sbatch flag --{name} given twice")
            continue
        if value is not None:
            try:
                value = directive_value(f"sbatch --{name}", value)
            except _BadValueError as e:
                ctx.bad(item, e.message, e.hint)
                continue
        flags[name] = (value, item)
    return flags


def _p_script(key: str, node: Node, ctx: _Ctx) -> tuple[str, str, ScriptDirectives]:
    path = _want_str(key, node)
    if not path.strip():
        raise _BadValueError("`script` is empty")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise _BadValueError("`script` path contains a control character", "rename the script file")
    # `~/x/job.sh` as the shell expanded it where the user ran `sbatch ~/x/job.sh`
    expanded = Path(os.path.expanduser(path))  # an unknown ~user stays as written (then: not found)
    full = expanded if expanded.is_absolute() else ctx.base_dir / path
    try:
        body = read_bounded(full, MAX_SCRIPT_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise _BadValueError(
            f"script {shown(path)} not found", f"looked for {full} (relative paths start at the workflow's directory)"
        ) from None
    except NotARegularFileError as e:
        raise _BadValueError(
            f"script {shown(path)} is {e.kind}, not a file", "give the path of the batch script itself"
        ) from None
    except FileTooLargeError as e:
        raise _BadValueError(f"script {shown(path)} is {e.over(MAX_SCRIPT_BYTES)}", SCRIPT_SIZE_HINT) from None
    except (OSError, UnicodeDecodeError) as e:
        raise _BadValueError(f"cannot read script {shown(path)}: {e}") from None
    if body.endswith("\r"):  # the template's newline after it would make a DOS line break
        raise _BadValueError(f"script {shown(path)} ends with a carriage return", CRLF_HINT)
    return path, _no_nul(key, body), ctx.directives(str(full), body)


# --- reading files without unbounded work ----------------------------------------------------------------------------

# Slurm refuses a batch script larger than `max_script_size` (slurm.conf SchedulerParameters), 4 MB by default
# (measured on 22.05: a 5 MB script fails "Pathname of a file, directory or other parameter too long").
MAX_SCRIPT_BYTES = 4 * 1024 * 1024
SCRIPT_SIZE_HINT = (
    "Slurm refuses batch scripts larger than max_script_size (SchedulerParameters in slurm.conf, 4 MB by default): "
    "keep data in files the script reads"
)
# A workflow of 10,000 allocations is about 1 MB; the limit only stops a wrong file from being read whole.
MAX_WORKFLOW_BYTES = 16 * 1024 * 1024


class NotARegularFileError(OSError):
    def __init__(self, kind: str):
        super().__init__(f"{kind}, not a regular file")
        self.kind = kind


class FileTooLargeError(OSError):
    def __init__(self, size: int, at_least: bool = False):
        super().__init__(f"{size} bytes")
        self.size, self.at_least = size, at_least

    def over(self, limit: int) -> str:
        """ "5 MB, more than 4 MB" (in bytes where megabytes would read the same)."""
        size, cap = _mib(self.size), _mib(limit)
        if size == cap:
            size, cap = f"{self.size:,} bytes", f"{limit:,} bytes"
        return ("more than " if self.at_least else "") + f"{size}, more than {cap}"


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_bounded(path: Path | str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; raises NotARegularFileError, FileTooLargeError or OSError.

    A FIFO would block the reader until someone writes and /dev/zero never ends: anything but a regular file is
    refused before it is opened (and again after, in case it was swapped), and no more than `limit` + 1 bytes are read.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFileError(_file_kind(st.st_mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(_file_kind(st.st_mode))
        if st.st_size > limit:
            raise FileTooLargeError(st.st_size)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            raise FileTooLargeError(limit, at_least=True)
        return b"".join(chunks)
    finally:
        os.close(fd)


PARSERS: dict[str, Callable[..., Any]] = {
    "name": lambda k, n, c: None,  # checked by _allocation, which also needs it when other keys are bad
    "entrypoint": _p_text,
    "script": _p_script,
    "depends_on": _p_deps,
    "depends_on_any": _p_deps,
    "tasks": lambda k, n, c: _p_positive_int(k, n, c),
    "array": _p_array,
    "matrix": _p_matrix,
    "env": _p_env,
    "setup": _p_setup,
    "retries": _p_retries,
    "on_failure": _p_on_failure,
    "outputs": _p_outputs,
    "stop_if": _p_stop_if,
    "sbatch": _p_sbatch,
    "group": lambda k, n, c: _p_name(k, n),
    "nodes": _p_nodes,
    "walltime": _p_walltime,
    "partition": _p_directive,
    "account": _p_directive,
    "qos": _p_directive,
    "reservation": _p_directive,
    "ntasks": _p_count,
    "ntasks_per_node": _p_count,
    "cpus_per_task": _p_count,
    "mem": _p_memory,
    "mem_per_cpu": _p_memory,
    "gpus": _p_gpus,
    "gres": _p_directive,
    "constraint": _p_directive,
    "exclusive": _p_exclusive,
    "workdir": _p_directive,
    "output": _p_directive,
    "error": _p_directive,
    "uenv": _p_directive,
}


# --- building the spec ---------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, file: str, base_dir: Path):
        self.file = file
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.default_keys: set[Any] = set()
        self.scripts: dict[str, ScriptDirectives] = {}
        self.tasks = 0  # array tasks of the allocations read so far
        self.chain: tuple[str, ...] = ()  # resolved paths of the files that include this one (`uses:`), outermost first
        self.subs: dict[str, SubWorkflow] = {}  # this file's `uses:` allocations by name
        self.all_subs: list[SubWorkflow] = []  # and every sub-workflow below them
        self.expanded = 0  # allocations made so far, sub-workflows' included (shared with the including files)

    def bad(self, node: Node | None, message: str, hint: str | None = None) -> None:
        self.problems.append(problem_at(self.file, node, message, hint))

    def indexes(
        self,
        key: str,
        count: int,
        node: Node | None,
        expand: Callable[[], Iterable[int]],
        directive: tuple[str, Any] | None = None,
    ) -> frozenset[int]:
        """A task group's indexes, expanded only while the workflow stays within MAX_TASKS (counted before
        expanding, so `tasks: 4000000` in many allocations costs nothing). Over the budget: a problem at `node`
        (or at the script's #SBATCH --array line) and no indexes."""
        if self.tasks + count > MAX_TASKS:
            if self.tasks > MAX_TASKS:  # already reported at the first group over the budget
                return frozenset()
            message = (
                f"`{key}` asks for {count:,} tasks, more than {MAX_TASKS:,}"
                if count > MAX_TASKS
                else f"`{key}` asks for {count:,} tasks, which makes {self.tasks + count:,} in the workflow, "
                f"more than {MAX_TASKS:,}"
            )
            hint = f"a workflow has at most {MAX_TASKS:,} tasks in all: give each task more work"
            if directive is not None:
                path, d = directive
                self.problems.append(Problem(message, path, d.line, d.col, hint))
            else:
                self.bad(node, message, hint)
            self.tasks = MAX_TASKS + 1  # report the first allocation over the budget, not every later one
            return frozenset()
        self.tasks += count
        return frozenset(expand())

    def directives(self, path: str, text: str) -> ScriptDirectives:
        """A script's #SBATCH block; its problems and notes are reported once, however many allocations use it."""
        if path not in self.scripts:
            d = read_directives(text, path)
            self.problems.extend(d.problems)
            # --array and --job-name are mapped, not lost (compile shows the task group; the docs say how jobs
            # are named): a note on every ported script would only be noise
            mapped = {(o.line, o.col) for o in d.directives if o.name in MAPPED_OWNED}
            self.warnings.extend(n for n in d.notes if (n.line, n.col) not in mapped)
            self.scripts[path] = d
        return self.scripts[path]


def _parse_keys(m: MapNode, allowed: tuple[str, ...], ctx: _Ctx, where: str) -> dict[str, tuple[Any, Node]]:
    """Parse every known key of an allocation-like mapping; report unknown keys and exclusive pairs."""
    out: dict[str, tuple[Any, Node]] = {}
    for key, value_node in m.value.items():
        key_node = m.keys[key]
        if key not in allowed:
            if key in ALLOCATION_KEYS:
                ctx.bad(key_node, f"`{key}` cannot be set in {where}")
            else:
                ctx.bad(key_node, f"unknown key {shown(key)} in {where}", did_you_mean(key, allowed))
            continue
        try:
            out[key] = (PARSERS[key](key, value_node, ctx), value_node)
        except _BadValueError as e:
            ctx.bad(e.node or value_node, e.message, e.hint)
    for group in EXCLUSIVE_GROUPS:
        present = [k for k in group if k in m.value]
        if len(present) > 1:
            ctx.bad(m.keys[present[1]], f"`{present[0]}` and `{present[1]}` cannot be used together in {where}")
    return out


def build_workflow(root: Node | None, file: str, base_dir: Path | str = ".") -> WorkflowSpec:
    """Validate the node tree of a workflow; raises InputError with every problem found."""
    spec, problems = build_partial(root, file, base_dir)
    if problems or spec is None:
        raise InputError(problems)
    return spec


def build_partial(
    root: Node | None, file: str, base_dir: Path | str = ".", within: _Ctx | None = None
) -> tuple[WorkflowSpec | None, list[Problem]]:
    """The spec as far as it could be built, and every problem found; lets `graph` add its own to the same report.

    `within`: the context of the file that includes this one with `uses:` (a sub-workflow shares its budgets)."""
    ctx = _Ctx(file, Path(base_dir))
    if within is None:
        top = Path(file)
        ctx.chain = (str(top.resolve()),) if top.is_file() else ()
    else:
        ctx.chain, ctx.tasks, ctx.expanded = within.chain, within.tasks, within.expanded
    if root is None:
        return None, [Problem("the workflow file is empty", file, 1, 1, "a workflow needs `name:` and `allocations:`")]
    if not isinstance(root, MapNode):
        return None, [
            problem_at(
                file,
                root,
                f"a workflow must be a mapping, not {type_name(root)}",
                "a workflow needs `name:` and `allocations:`",
            )
        ]
    for key, key_node in root.keys.items():
        if key not in TOP_KEYS:
            hint = did_you_mean(key, TOP_KEYS)
            if key in ALLOCATION_KEYS:
                hint = f"`{key}` belongs under `defaults:` or an allocation"
            ctx.bad(key_node, f"unknown top-level key {shown(key)}", hint)

    name = _workflow_name(root, ctx)
    max_concurrent = None
    if root.value.get("max_concurrent") is not None:
        try:
            max_concurrent = _p_positive_int("max_concurrent", root.value["max_concurrent"], ctx)
        except _BadValueError as e:
            ctx.bad(e.node or root.value["max_concurrent"], e.message, e.hint)
    auto_array = None
    auto_node = root.value.get("auto_array")
    if auto_node is not None and not (isinstance(auto_node, ScalarNode) and auto_node.value is None):
        if isinstance(auto_node, ScalarNode) and isinstance(auto_node.value, bool):
            auto_array = auto_node.value
        else:
            value = auto_node.value if isinstance(auto_node, ScalarNode) else None
            ctx.bad(auto_node, "`auto_array` must be true or false", bool_hint(value) or "e.g. `auto_array: true`")
    fuse = _fuse(root.value.get("fuse"), ctx)
    groups = _groups(root.value.get("groups"), ctx)
    params, param_nodes = _params(root.value.get("params"), ctx)
    on_failure = "continue"
    if root.value.get("on_failure") is not None:
        try:
            on_failure = _p_on_failure("on_failure", root.value["on_failure"], ctx)
        except _BadValueError as e:
            ctx.bad(e.node or root.value["on_failure"], e.message, e.hint)
    defaults: dict[str, tuple[Any, Node]] = {}
    dnode = root.value.get("defaults")
    if dnode is not None and not (isinstance(dnode, ScalarNode) and dnode.value is None):
        if isinstance(dnode, MapNode):
            allowed = tuple(k for k in ALLOCATION_KEYS if k not in NOT_IN_DEFAULTS)
            defaults = _parse_keys(dnode, allowed, ctx, "defaults")
            ctx.default_keys = set(dnode.value)
        else:
            ctx.bad(dnode, f"`defaults` must be a mapping, not {type_name(dnode)}")

    allocations: list[AllocationSpec] = []
    anode = root.value.get("allocations")
    if anode is None:
        ctx.bad(root, "missing required key 'allocations'", "list the workflow's steps under `allocations:`")
    elif not isinstance(anode, SeqNode):
        ctx.bad(
            anode, f"`allocations` must be a list, not {type_name(anode)}", "start each allocation with `- name: ...`"
        )
    elif not anode.value:
        ctx.bad(anode, "`allocations` is empty", "a workflow needs at least one allocation")
    else:
        for i, item in enumerate(anode.value):
            if isinstance(item, MapNode) and "uses" in item.value:
                allocations.extend(_uses(i, item, ctx))
                continue
            alloc = _allocation(i, item, defaults, ctx)
            if alloc is not None:
                alloc.file = file
                allocations.append(alloc)
                ctx.expanded += 1
        _check_sub_names(allocations, ctx, top=within is None)
        resolve(
            allocations,
            ctx.subs,
            lambda dep, a, message, hint: ctx.problems.append(problem_at(dep.file or a.file, dep.node, message, hint)),
        )
        for n, alloc in enumerate(allocations):
            alloc.index = n  # run-order ties follow the expanded file order
    if within is not None:
        within.tasks, within.expanded = ctx.tasks, ctx.expanded
    used = {a.group for a in allocations}
    for gname, g in groups.items():
        if gname not in used:
            ctx.bad(
                g.node, f"group {shown(gname)} has no members", "members say `group: NAME` (docs/workflow-format.md)"
            )
    spec = WorkflowSpec(
        name=name,
        file=file,
        allocations=allocations,
        params=params,
        param_nodes=param_nodes,
        node=root,
        allocations_node=root.keys.get("allocations"),
        warnings=ctx.warnings,
        max_concurrent=max_concurrent,
        auto_array=auto_array,
        on_failure=on_failure,
        subworkflows=ctx.all_subs,
        fuse=fuse,
        fuse_node=root.value.get("fuse"),
        groups=groups,
    )
    for a in allocations:
        if "on_failure" in a.where and a.decided_at is None:
            a.decided_at = (a.file, a.where["on_failure"])
        if a.on_failure is None and (within is None or "on_failure" in root.value):
            # a sub-workflow without its own `on_failure` takes the including workflow's
            a.on_failure = on_failure
            a.decided_at = (file, root.value.get("on_failure", a.node))
        if (
            within is None
            and a.on_failure == "stop"
            and a.script is not None
            and shell_kind(a.script.shebang) == "none"
        ):
            where_file, where = a.decided_at or (a.file, a.node)
            ctx.problems.append(
                problem_at(
                    where_file,
                    where,
                    f"`on_failure: stop` cannot be used with script {shown(a.script_path)} of allocation "
                    f"{shown(a.name)}: it runs under {interpreter(a.script.shebang) or 'an unknown interpreter'}, "
                    "not a shell",
                    "the job stops its DAG from shell code added before the script: wrap it in a bash script, "
                    "or set `on_failure: continue` on this allocation",
                )
            )
    return spec, ctx.problems


def _fuse(node: Node | None, ctx: _Ctx) -> str:
    if node is None or (isinstance(node, ScalarNode) and node.value is None):
        return "none"
    if not isinstance(node, ScalarNode) or node.value not in FUSE_MODES:
        value = node.value if isinstance(node, ScalarNode) else type_name(node)
        ctx.bad(
            node, f"`fuse` must be one of {', '.join(FUSE_MODES)}, not {shown(value)}", did_you_mean(value, FUSE_MODES)
        )
        return "none"
    return str(node.value)


def _groups(node: Node | None, ctx: _Ctx) -> dict[str, GroupSpec]:
    """`groups: {NAME: {walltime: ...}}`: what a group says about itself (its members name it with `group:`)."""
    if node is None or (isinstance(node, ScalarNode) and node.value is None):
        return {}
    if not isinstance(node, MapNode):
        ctx.bad(node, f"`groups` must be a mapping of group name to its keys, not {type_name(node)}")
        return {}
    out: dict[str, GroupSpec] = {}
    for name, value in node.value.items():
        key_node = node.keys[name]
        if not isinstance(name, (str, int)) or isinstance(name, bool) or not NAME_RE.match(str(name)):
            ctx.bad(key_node, f"invalid group name {shown(name)}", NAME_HINT)
            continue
        group = GroupSpec(str(name), key_node)
        out[group.name] = group
        if value is None or (isinstance(value, ScalarNode) and value.value is None):
            continue
        if not isinstance(value, MapNode):
            ctx.bad(value, f"group {shown(name)} must be a mapping (e.g. `walltime: 1h`), not {type_name(value)}")
            continue
        for key, vnode in value.value.items():
            if key not in GROUP_KEYS:
                ctx.bad(
                    value.keys[key],
                    f"unknown key {shown(key)} in group {shown(name)}",
                    did_you_mean(key, GROUP_KEYS) or f"a group's keys: {', '.join(GROUP_KEYS)}",
                )
                continue
            try:
                group.walltime = _p_walltime(key, vnode, ctx)
            except _BadValueError as e:
                ctx.bad(e.node or vnode, e.message, e.hint)
    return out


def _workflow_name(root: MapNode, ctx: _Ctx) -> str:
    node = root.value.get("name")
    if node is None:
        ctx.bad(root, "missing required key 'name'", "give the workflow a name, e.g. `name: my-pipeline`")
        return ""
    if not isinstance(node, ScalarNode) or not isinstance(node.value, str):
        ctx.bad(node, f"`name` must be a string, not {type_name(node)}")
        return ""
    if not NAME_RE.match(node.value):
        ctx.bad(node, f"invalid workflow name {shown(node.value)}", NAME_HINT)
    return node.value


def _params(node: Node | None, ctx: _Ctx) -> tuple[dict[str, Any], dict[str, Node]]:
    if node is None or (isinstance(node, ScalarNode) and node.value is None):
        return {}, {}
    if not isinstance(node, MapNode):
        ctx.bad(node, f"`params` must be a mapping of name: value, not {type_name(node)}")
        return {}, {}
    params: dict[str, Any] = {}
    nodes: dict[str, Node] = {}
    for k, v in node.value.items():
        if not isinstance(k, str) or not IDENT_RE.match(k):
            ctx.bad(
                node.keys[k], f"invalid param name {shown(k)}", "use letters, digits and '_', not starting with a digit"
            )
            continue
        if not isinstance(v, ScalarNode):
            ctx.bad(v, f"param {shown(k)} must be a string, number or boolean, not {type_name(v)}")
            continue
        params[k] = v.value
        nodes[k] = v
    return params, nodes


USES_KEYS = ("name", "uses", "with", "depends_on", "depends_on_any")  # an allocation that is a sub-workflow
MAX_USES_DEPTH = 16  # sub-workflows inside sub-workflows
MAX_EXPANDED_ALLOCATIONS = 100_000  # allocations made while expanding sub-workflows, before the DAG limit applies


def _name(index: int, item: MapNode, ctx: _Ctx) -> str:
    """An allocation's name ("" if missing or invalid, reported)."""
    name_node = item.value.get("name")
    if name_node is None:
        ctx.bad(item, f"allocation #{index + 1} has no `name`", NAME_HINT)
        return ""
    if not isinstance(name_node, ScalarNode) or not isinstance(name_node.value, (str, int)) or name_node.value is True:
        ctx.bad(name_node, f"allocation name must be a string, not {type_name(name_node)}")
        return ""
    name = str(name_node.value)
    if not NAME_RE.match(name):
        ctx.bad(name_node, f"invalid allocation name {shown(name)}", NAME_HINT)
        return ""
    return name


def _uses(index: int, item: MapNode, ctx: _Ctx) -> list[AllocationSpec]:
    """A `uses:` allocation: the included workflow's allocations, named `<name>.<theirs>` (see compiler/uses.py)."""
    name = _name(index, item, ctx)
    for key, key_node in item.keys.items():
        if key not in USES_KEYS:
            hint = did_you_mean(key, USES_KEYS) if key not in ALLOCATION_KEYS else None
            ctx.bad(
                key_node,
                f"`{key}` cannot be set on {shown(name or f'allocation #{index + 1}')}, which uses a sub-workflow",
                hint
                or "a `uses:` allocation takes name, uses, with, depends_on and depends_on_any; "
                "set the rest inside the sub-workflow",
            )
    deps: dict[str, list[DepSpec]] = {}
    for key in ("depends_on", "depends_on_any"):
        if key in item.value:
            try:
                deps[key] = [dataclasses.replace(d, file=ctx.file) for d in _p_deps(key, item.value[key], ctx)]
            except _BadValueError as e:
                ctx.bad(e.node or item.value[key], e.message, e.hint)
    uses_node = item.value["uses"]
    try:
        rel = _want_str("uses", uses_node)
    except _BadValueError as e:
        ctx.bad(uses_node, e.message, "write the path of a workflow file, relative to this one")
        return []
    if not name:
        return []
    if name in ctx.subs:
        ctx.bad(item.value.get("name"), f"duplicate allocation name {shown(name)}")
        return []
    sub = SubWorkflow(name, str(Path(ctx.file).parent / rel), item)
    ctx.subs[name] = sub  # registered before anything can fail: references to it are not "unknown"
    path = (ctx.base_dir / rel).resolve()
    if str(path) in ctx.chain:
        names = [*(Path(p).name for p in ctx.chain[ctx.chain.index(str(path)) :]), path.name]
        ctx.bad(uses_node, f"sub-workflow cycle: {' -> '.join(names)}", "a workflow cannot use itself, even indirectly")
        return []
    if len(ctx.chain) > MAX_USES_DEPTH:  # the including files: this one would be nested one deeper
        ctx.bad(uses_node, f"sub-workflows are nested more than {MAX_USES_DEPTH} deep", "flatten the nesting")
        return []
    try:
        root = parse_yaml(read_text(path), sub.file)
    except InputError as e:
        for p in e.problems:
            if p.line is None:  # the file could not be read: say so where it is used
                ctx.bad(uses_node, f"cannot use {shown(rel)}: {p.message}", p.hint)
            else:
                ctx.problems.append(p)
        return []
    if ctx.expanded > MAX_EXPANDED_ALLOCATIONS:  # reported once, by _check_sub_names
        return []
    within = _Ctx(sub.file, path.parent)
    within.chain, within.tasks, within.expanded = (*ctx.chain, str(path)), ctx.tasks, ctx.expanded
    spec, problems = build_partial(root, sub.file, path.parent, within=within)
    ctx.tasks, ctx.expanded = within.tasks, within.expanded
    ctx.problems.extend(problems)
    if spec is None:
        return []
    ctx.warnings.extend(spec.warnings)
    params = dict(spec.params)
    with_node = item.value.get("with")
    if with_node is not None and not (isinstance(with_node, ScalarNode) and with_node.value is None):
        if not isinstance(with_node, MapNode):
            ctx.bad(with_node, f"`with` must be a mapping of param: value, not {type_name(with_node)}")
        else:
            for k, vnode in with_node.value.items():
                if k not in spec.params:
                    hint = did_you_mean(k, spec.params) or (
                        f"its params: {', '.join(spec.params)}" if spec.params else f"{sub.file} declares no params"
                    )
                    ctx.bad(with_node.keys[k], f"{shown(k)} is not a param of sub-workflow {sub.file}", hint)
                elif not isinstance(vnode, ScalarNode) or vnode.value is None:
                    ctx.bad(
                        vnode, f"the value for {shown(k)} must be a string, number or boolean, not {type_name(vnode)}"
                    )
                else:
                    params[k] = vnode.value
    for a in spec.allocations:
        if a.params is None:
            a.params = params
    prefix(spec.allocations, spec.subworkflows, name)
    longest = max((a.name for a in spec.allocations), key=len, default="")
    if len(longest) > 64:
        ctx.bad(
            item.value.get("name"),
            f"the allocations of {shown(name)} would be named up to {len(longest)} characters ({shown(longest)}), "
            "more than 64",
            "use a shorter name for the sub-workflow",
        )
    sub.roots, sub.leaves = roots_and_leaves(spec.allocations)
    sub.members = [a.name for a in spec.allocations]
    for a in spec.allocations:
        if a.name in sub.roots:
            a.depends_on = list(deps.get("depends_on", ()))
            a.depends_on_any = list(deps.get("depends_on_any", ()))
    ctx.all_subs.extend([sub, *spec.subworkflows])
    return spec.allocations


def _check_sub_names(allocations: list[AllocationSpec], ctx: _Ctx, top: bool) -> None:
    """A `uses:` name taken by another allocation of the same file is a duplicate; expansion is bounded."""
    for a in allocations:
        if a.name in ctx.subs and a.file == ctx.file:
            ctx.bad(
                a.node.value.get("name"), f"duplicate allocation name {shown(a.name)}", "a `uses:` allocation has it"
            )
    if top and ctx.expanded > MAX_EXPANDED_ALLOCATIONS:  # reported once, for the whole workflow
        ctx.bad(
            None,
            f"the sub-workflows expand into more than {MAX_EXPANDED_ALLOCATIONS:,} allocations",
            "use fewer or smaller sub-workflows",
        )


def _allocation(index: int, item: Node, defaults: dict[str, tuple[Any, Node]], ctx: _Ctx) -> AllocationSpec | None:
    if not isinstance(item, MapNode):
        ctx.bad(
            item,
            f"allocation #{index + 1} must be a mapping, not {type_name(item)}",
            "write `- name: step` followed by its keys",
        )
        return None
    name_node = item.value.get("name")
    name = ""
    if name_node is None:
        ctx.bad(item, f"allocation #{index + 1} has no `name`", NAME_HINT)
    elif (
        not isinstance(name_node, ScalarNode)
        or not isinstance(name_node.value, (str, int))
        or isinstance(name_node.value, bool)
    ):
        ctx.bad(name_node, f"allocation name must be a string, not {type_name(name_node)}")
    else:
        name = str(name_node.value)
        if not NAME_RE.match(name):
            ctx.bad(name_node, f"invalid allocation name {shown(name)}", NAME_HINT)
    where = f"allocation {shown(name)}" if name else f"allocation #{index + 1}"
    own = _parse_keys(item, ALLOCATION_KEYS, ctx, where)
    own.pop("name", None)

    merged = dict(defaults)
    for group in EXCLUSIVE_GROUPS:
        if any(k in own for k in group):
            for k in group:
                merged.pop(k, None)
    merged.update(own)
    if "env" in defaults and "env" in own:  # env merges per variable; every other key is replaced whole
        merged["env"] = ({**defaults["env"][0], **own["env"][0]}, own["env"][1])

    a = AllocationSpec(name=name, index=index, node=item)
    for key, (value, node) in merged.items():
        a.where[key] = node
        if key == "walltime":
            a.walltime = value
        elif key in OPTION_KEYS:
            opt = OPTION_KEYS[key]
            if value is True:
                a.options[opt] = None
            elif value is not False:
                a.options[opt] = value
        elif key == "entrypoint":
            a.entrypoint = value
        elif key == "script":
            a.script_path, a.script_body, a.script = value
        elif key == "depends_on":
            a.depends_on = value
        elif key == "depends_on_any":
            a.depends_on_any = value
        elif key == "tasks":
            a.tasks = value
            a.array = f"0-{value - 1}"
            a.indexes = ctx.indexes(key, value, node, functools.partial(range, value))
        elif key == "array":
            a.array, count = value
            a.indexes = ctx.indexes(key, count, node, functools.partial(wt.array_indexes, a.array))
        elif key == "matrix":
            a.matrix = value
            size = len(value.rows)
            a.array = f"0-{size - 1}"
            a.indexes = ctx.indexes(key, size, node, functools.partial(range, size))
        elif key == "env":
            a.env = {k: v for k, (v, _) in value.items()}
            for k, (_, vnode) in value.items():
                a.where[f"env.{k}"] = vnode
        elif key == "setup":
            a.setup = [line for line, _ in value]
            for i, (_, lnode) in enumerate(value):
                a.where[f"setup[{i}]"] = lnode
        elif key == "retries":
            a.retries = value
        elif key == "on_failure":
            a.on_failure = value
        elif key == "outputs":
            a.outputs = value
        elif key == "group":
            a.group = value
        elif key == "stop_if":
            a.stop_if = value
            others = sorted({c.allocation for c in stop_if_lang.comparisons(value[1]) if c.allocation != name})
            if others and name:
                ctx.bad(
                    node,
                    f"`stop_if` of {shown(name)} reads the outputs of {', '.join(map(shown, others))}: "
                    "a condition reads the allocation's own outputs only",
                    f"write outputs.{name}.<output name>",
                )
        elif key == "sbatch":
            for flag, (fvalue, _) in value.items():
                a.options[flag] = fvalue
    a.options = dict(sorted(a.options.items()))
    if a.script is not None:
        _merge_script(a, ctx)
    if a.retries and a.entrypoint is not None and "comment" in a.options:
        ctx.bad(
            a.where.get("retries", item),
            f"allocation {name!r} sets its own --comment, and `retries` notes each attempt in the job's comment",
            "keep one of them: your comment, or slurmdag's attempt notes",
        )
    written = set(item.value) | ctx.default_keys  # a key that was written but is invalid is reported already
    if "entrypoint" not in written and "script" not in written and name:
        ctx.bad(
            item,
            f"allocation {shown(name)} needs an `entrypoint` or a `script`",
            'e.g. `entrypoint: "python train.py"`',
        )
    return a


def _merge_script(a: AllocationSpec, ctx: _Ctx) -> None:
    """Apply the script's #SBATCH options under the workflow's own, and its --array unless the workflow has one."""
    script = a.script
    assert script is not None
    # `sbatch:` flags are stored by their full name already; compare the script's the same way
    own = dict(a.options)
    if a.walltime is not None:  # for the option sources and the override; the typed value stays the one used
        own["time"] = wt.format_walltime(a.walltime)
    workflow: dict[str, str | None] = {}
    for name, value in sorted(own.items()):
        opt = resolve_long(name)
        workflow[opt.long if opt else name] = value
    a.merged = merge(script, workflow, a.array)
    a.options = dict(a.merged.options)
    time = a.options.pop("time", None)
    if a.walltime is None and time is not None:
        try:
            a.walltime = wt.parse_time_option(time)
        except ValueError as e:
            d = next(d for d in reversed(script.directives) if d.name == "time")
            hint = f"accepted forms: {wt.WALLTIME_FORMS}, or UNLIMITED"
            ctx.problems.append(Problem(f"invalid --time {time!r}: {e}", script.path, d.line, d.col, hint))
    if a.array is None and a.merged.array is not None:
        text = a.merged.array.strip()
        d = next(d for d in reversed(script.directives) if d.name == "array")
        try:
            count = wt.array_size(text)
        except ValueError as e:
            message = f"invalid --array {shown(a.merged.array)}: {e}"
            ctx.problems.append(Problem(message, script.path, d.line, d.col, f"accepted: {wt.ARRAY_FORMS}"))
        else:
            a.array = text
            a.indexes = ctx.indexes("--array", count, None, functools.partial(wt.array_indexes, text), (script.path, d))
    if shell_kind(script.shebang) == "none":
        # slurmdag's env, setup and matrix lines are shell code: they cannot go into, say, a Python script
        for key in ("env", "setup", "matrix", "outputs", "stop_if"):
            if key in a.where:
                ctx.bad(
                    a.where[key],
                    f"`{key}` cannot be used with script {shown(a.script_path)}: it runs under "
                    f"{interpreter(script.shebang) or 'an unknown interpreter'}, not a shell",
                    "set the values inside the script, or wrap it in a bash script",
                )


# --- loading -------------------------------------------------------------------------------------------------------


def read_text(path: Path | str) -> str:
    """A workflow file's text; unreadable files are input errors, not tracebacks."""
    file = str(path)
    try:
        data = read_bounded(path, MAX_WORKFLOW_BYTES)
    except FileNotFoundError:
        raise InputError(Problem("no such file", file, hint="check the path of the workflow file")) from None
    except NotARegularFileError as e:
        raise InputError(Problem(f"is {e.kind}, not a workflow file", file)) from None
    except FileTooLargeError as e:
        raise InputError(
            Problem(
                f"the workflow file is {e.over(MAX_WORKFLOW_BYTES)}",
                file,
                hint="a workflow of 10,000 allocations takes about 1 MB: is this the right file?",
            )
        ) from None
    except OSError as e:
        raise InputError(Problem(f"cannot read the workflow file: {e.strerror or e}", file)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(Problem("the workflow file is not valid UTF-8", file, line, col)) from None


def parse_workflow(text: str, file: str = "<input>", base_dir: Path | str = ".") -> WorkflowSpec:
    return build_workflow(parse_yaml(text, file), file, base_dir)


def load_workflow(path: Path | str) -> WorkflowSpec:
    """Read and validate one workflow file (value checks only; `graph.check` does the cross-allocation ones)."""
    return parse_workflow(read_text(path), str(path), Path(path).parent)
