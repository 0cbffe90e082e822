"""Validated workflow -> Plan: params applied, edges lowered to native Slurm dependencies, scripts rendered.

Lowering (docs/workflow-format.md, "Conditions"):
  success -> afterok:P    any -> afterany:P    corresponding -> aftercorr:P
  failure -> afternotok:P AND P's own terms (so a P cancelled by the cascade, which Slurm counts as "not ok", does
             not fire it); aftercorr terms inherited this way become afterok.
  depends_on -> terms joined with ',' ; depends_on_any -> terms joined with '?'.
Slurm reads an expression mixing ',' and '?' as all-OR (slurm-facts.md §2 #16), so an OR that must be ANDed with
anything goes through a generated join job `<alloc>+any` (runs `exit 0` once the OR holds), and a failure condition
inside depends_on_any (an AND inside an OR) through a join job `<alloc>+failed.<parent>`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import jinja2

from slurmdag.compiler import graph, grouping, output_refs, packing, render
from slurmdag.compiler import stop_if as stop_if_lang
from slurmdag.compiler.script_directives import shell_kind
from slurmdag.compiler.spec import (
    LINE_KEYS,
    MAX_SCRIPT_BYTES,
    SCRIPT_SIZE_HINT,
    AllocationSpec,
    WorkflowSpec,
    build_partial,
    did_you_mean,
    problem_at,
    read_text,
)
from slurmdag.compiler.template_sandbox import BoundedEnvironment, TemplateLimitError
from slurmdag.compiler.yamlsrc import Node, TooManyItemsError, parse_yaml, plain_scalar
from slurmdag.model.errors import InputError, Problem, shown
from slurmdag.model.plan import Dependency, DependencyTerm, Edge, Plan, PlannedJob

TemplateDirs = Sequence[str | PathLike[str]]

_LOWERING = {"success": "afterok", "any": "afterany", "corresponding": "aftercorr"}
# A join job only needs to exist: smallest request, on the same queue/account as what it serves.
_JOIN_OPTIONS = {"ntasks": "1", "cpus-per-task": "1"}
_JOIN_WALLTIME = 60  # seconds; it runs `exit 0`
_JOIN_COPIED = ("partition", "account", "qos", "reservation")


def join_job(
    workflow: str,
    name: str,
    for_allocation: str,
    allocation_options: Mapping[str, str | None],
    dependency: Dependency,
    renderer: render.Renderer | None = None,
) -> PlannedJob:
    """A generated join job (`<alloc>+any`, ...) for `for_allocation`: one CPU for a minute, where it runs."""
    options: dict[str, str | None] = dict(_JOIN_OPTIONS)
    for key in _JOIN_COPIED:
        if key in allocation_options:
            options[key] = allocation_options[key]
    job = PlannedJob(
        name=name,
        kind="join",
        options=dict(sorted(options.items())),
        script="",
        dependency=dependency,
        for_allocation=for_allocation,
        walltime=_JOIN_WALLTIME,
    )
    written = render.sbatch_options(job)
    ctx = render.ScriptContext(
        workflow=workflow,
        name=name,
        kind="join",
        directives=render.directive_lines(written),
        for_allocation=for_allocation,
    )
    job.script = (renderer or render.renderer_for()).render(ctx, dict(written))
    return job


# --- public entry points -------------------------------------------------------------------------------------------


def _without_gc(fn):
    """Pause the cyclic GC while compiling: a big workflow allocates ~10 objects per YAML node and the repeated
    full collections made 10,000 allocations take 2-3x longer (benchmarks/bench_compile.py). Nothing compile builds
    needs the cycle collector; reference counting frees it, and the GC state is restored afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            if gc.isenabled():
                gc.disable()
                stack.callback(gc.enable)
            return fn(*args, **kwargs)

    return wrapper


@_without_gc
def compile_file(
    path: str | PathLike[str],
    overrides: Mapping[str, str] | None = None,
    template_dirs: TemplateDirs = (),
    max_allocations: int = graph.DEFAULT_MAX_ALLOCATIONS,
    warnings: list[Problem] | None = None,
    limit_note: str | None = None,
    auto_array: bool = False,
) -> Plan:
    """Read, validate and compile one workflow file; raises InputError listing every problem found.

    `warnings`, if given, receives what is worth telling but not refusing (e.g. notes on a `script:`'s directives),
    also when the workflow is refused. A workflow with more than `max_allocations` allocations is refused as soon
    as the one over the limit is read; `limit_note` (e.g. who set the limit) goes into that refusal's hint.
    """
    file = str(path)
    root = _read_yaml(read_text(file), file, max_allocations, limit_note)
    return compile_allocations(
        root,
        file,
        Path(path).parent,
        overrides,
        template_dirs,
        max_allocations,
        source=file,
        warnings=warnings,
        auto_array=auto_array,
    )


@_without_gc
def compile_text(
    text: str,
    file: str = "<input>",
    overrides: Mapping[str, str] | None = None,
    template_dirs: TemplateDirs = (),
    max_allocations: int = graph.DEFAULT_MAX_ALLOCATIONS,
    base_dir: str | PathLike[str] = ".",
    warnings: list[Problem] | None = None,
    limit_note: str | None = None,
    auto_array: bool = False,
) -> Plan:
    """Like compile_file, for workflow text already in memory (`file` names it in error messages)."""
    return compile_allocations(
        _read_yaml(text, file, max_allocations, limit_note),
        file,
        base_dir,
        overrides,
        template_dirs,
        max_allocations,
        warnings=warnings,
        auto_array=auto_array,
    )


def _read_yaml(text: str, file: str, max_allocations: int, limit_note: str | None) -> Node | None:
    """The workflow's nodes; reading stops at the first allocation over the limit (100,000 allocations are
    refused in the time 1,000 take to read, and with the place where the limit was passed)."""
    try:
        return parse_yaml(text, file, list_limit=("allocations", max_allocations))
    except TooManyItemsError as e:
        hint = "split the workflow, or use task groups (tasks/array/matrix) for similar steps"
        message = f"the workflow has more than {e.limit:,} allocations"
        raise InputError(
            Problem(message, file, e.line, e.col, f"{limit_note}; {hint}" if limit_note else hint)
        ) from None


@_without_gc
def compile_allocations(
    root: Node | None,
    file: str,
    base_dir: str | PathLike[str] = ".",
    overrides: Mapping[str, str] | None = None,
    template_dirs: TemplateDirs = (),
    max_allocations: int = graph.DEFAULT_MAX_ALLOCATIONS,
    source: str | None = None,
    warnings: list[Problem] | None = None,
    auto_array: bool = False,
) -> Plan:
    """Compile a node tree (from yamlsrc or the Python API), reporting spec and graph problems together."""
    spec, problems = build_partial(root, file, os.fspath(base_dir))
    if spec is None:
        raise InputError(problems)
    if warnings is not None:
        warnings.extend(spec.warnings)
    return _compile(spec, problems, overrides, template_dirs, max_allocations, source, auto_array)


@_without_gc
def compile_spec(
    spec: WorkflowSpec,
    overrides: Mapping[str, str] | None = None,
    template_dirs: TemplateDirs = (),
    max_allocations: int = graph.DEFAULT_MAX_ALLOCATIONS,
    source: str | None = None,
    warnings: list[Problem] | None = None,
    auto_array: bool = False,
) -> Plan:
    """Compile an already validated spec (see spec.load_workflow); raises InputError listing every problem."""
    if warnings is not None:
        warnings.extend(spec.warnings)
    return _compile(spec, [], overrides, template_dirs, max_allocations, source, auto_array)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`--set K=V` arguments -> {K: V}; raises InputError naming every malformed one."""
    out: dict[str, str] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(Problem(f"invalid --set {shown(item)}", "--set", hint="write --set NAME=VALUE"))
            continue
        out[key] = value
    if problems:
        raise InputError(problems)
    return out


# --- the work ------------------------------------------------------------------------------------------------------


def _compile(
    spec: WorkflowSpec,
    problems: list[Problem],
    overrides: Mapping[str, str] | None,
    template_dirs: TemplateDirs,
    max_allocations: int,
    source: str | None,
    auto_array: bool = False,
) -> Plan:
    problems = list(problems)
    problems.extend(output_refs.add_edges(spec))  # before the graph: a reference is an edge
    try:
        order = graph.check(spec, max_allocations)
    except InputError as e:
        problems.extend(e.problems)
        order = []
    params = _apply_overrides(spec, overrides or {}, problems)
    texts = _ParamRenderer(spec, params, problems)
    rendered = {a.name: texts.allocation(a) for a in spec.allocations}
    if problems:
        raise InputError(problems)
    lowered = _lower_refs(spec, rendered, problems)
    if problems:
        raise InputError(problems)

    renderer = render.renderer_for(template_dirs)
    failure_parents = {d.parent for a in order for d in (*a.depends_on, *a.depends_on_any) if d.condition == "failure"}
    jobs: list[PlannedJob] = []
    dependency_of: dict[str, Dependency | None] = {}
    for a in order:
        deps, joins = _lower(a, dependency_of, a.name in failure_parents)
        for join_name, join_dep in joins:
            jobs.append(join_job(spec.name, join_name, a.name, a.options, join_dep, renderer))
        dependency_of[a.name] = deps
        job = _allocation_job(spec.name, a, deps, lowered[a.name], renderer)
        size = len(job.script) if job.script.isascii() else len(job.script.encode("utf-8"))
        if size > MAX_SCRIPT_BYTES:
            where = next((a.where[k] for k in ("matrix", "script", "entrypoint", "setup") if k in a.where), a.node)
            problems.append(
                problem_at(
                    a.file or spec.file,
                    where,
                    f"the batch script of allocation {shown(a.name)} would be {size / 2**20:.1f} MB, "
                    f"more than {MAX_SCRIPT_BYTES // 2**20} MB",
                    SCRIPT_SIZE_HINT,
                )
            )
        jobs.append(job)
    if problems:
        raise InputError(problems)
    if spec.fuse == "auto" or spec.groups or any(a.group is not None for a in order):
        grouped = grouping.apply(spec, order, jobs)
        if grouped.problems:
            raise InputError(grouped.problems)
        jobs = grouped.jobs
    if spec.auto_array if spec.auto_array is not None else auto_array:
        jobs = packing.apply(spec.name, jobs, packing.find_packs(jobs))
    subs = {s.name: {"file": s.file, "members": list(s.members)} for s in spec.subworkflows}
    return Plan(
        workflow=spec.name,
        jobs=jobs,
        params=params,
        source=source,
        max_concurrent=spec.max_concurrent,
        subworkflows=subs,
    )


def _apply_overrides(spec: WorkflowSpec, overrides: Mapping[str, str], problems: list[Problem]) -> dict[str, Any]:
    params = dict(spec.params)
    if not isinstance(overrides, Mapping):
        problems.append(
            Problem(f"overrides must be a mapping of param name to value, not {type(overrides).__name__}", "--set")
        )
        return params
    for key, text in overrides.items():
        if key not in spec.params:
            hint = did_you_mean(key, spec.params) or (
                f"the workflow's params: {', '.join(spec.params)}" if spec.params else "the workflow declares no params"
            )
            problems.append(Problem(f"unknown param {shown(key)}", "--set", hint=hint))
            continue
        if isinstance(text, str):
            params[key] = plain_scalar(text)  # read as the workflow's own values are
        elif isinstance(text, (int, float)) and not (isinstance(text, int) and text.bit_length() > 10_000):
            params[key] = text  # the Python API may pass a number (or a boolean) as it is
        else:
            problems.append(
                Problem(
                    f"the value for param {shown(key)} must be a string, number or boolean, not {type(text).__name__}",
                    "--set",
                )
            )
    return params


_TEMPLATE_LIMITS_HINT = (
    "templates are evaluated within bounds (1 s of CPU time, 1,000,000 characters, numbers of 4096 bits): "
    "see docs/workflow-format.md, Limits"
)


class _ParamRenderer:
    """Renders `{{ params.x }}` in entrypoint, env and setup; errors point at the key that used the param."""

    _MARKERS = ("{{", "{%", "{#")

    def __init__(self, spec: WorkflowSpec, params: dict[str, Any], problems: list[Problem]):
        self.spec = spec
        self.params = params
        self.problems = problems
        self.env = BoundedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
        # The result depends on the text alone (params are the same for all): render each text once, and report a
        # failure again at every place that uses the text.
        # (A sub-workflow's allocations render with its own params: the cache is per text and params.)
        self.cache: dict[tuple[str, int], tuple[str | None, tuple[str, str | None] | None]] = {}
        self.current: dict[str, Any] = params
        self.file = spec.file

    def allocation(self, a: AllocationSpec) -> tuple[str | None, dict[str, str], list[str]]:
        self.current = a.params if a.params is not None else self.params
        self.file = a.file or self.spec.file
        entry = self.text(a.entrypoint, "entrypoint", a.where.get("entrypoint")) if a.entrypoint is not None else None
        env = {k: self.text(v, f"env.{k}", a.where.get(f"env.{k}")) or "" for k, v in a.env.items()}
        setup = [self.text(line, "setup", a.where.get(f"setup[{i}]")) or "" for i, line in enumerate(a.setup)]
        return entry, env, setup

    def text(self, text: str, key: str, node: Node | None) -> str | None:
        if not any(m in text for m in self._MARKERS):
            return text
        cache_key = (text, id(self.current))
        if cache_key not in self.cache:
            self.cache[cache_key] = self._render(text)
        out, failure = self.cache[cache_key]
        if failure is None and out is not None and out.endswith("\r") and key in LINE_KEYS:
            # the script's own line break follows an entrypoint or setup line (env values are quoted)
            failure = (
                "the result of `{key}` ends with a carriage return, which the script's line break turns into \\r\\n",
                "sbatch refuses a batch script with DOS line breaks",
            )
        if failure is not None:
            message, hint = failure
            self.problems.append(problem_at(self.file, node, message.replace("{key}", key), hint))
        return out

    def _render(self, text: str) -> tuple[str | None, tuple[str, str | None] | None]:
        """(the rendered text, None) or (None, (message with a {key} placeholder, hint))."""
        try:
            out = self.env.render_bounded(text, params=self.current, outputs=output_refs.RefsVariable())
            if "\x00" in output_refs.without_markers(out):
                if "\x00" in text:
                    raise ValueError("the result contains a NUL character")
                raise ValueError(output_refs.MANGLED)
            if "\r\n" in out:
                raise ValueError("the result contains a DOS line break (\\r\\n), which sbatch refuses")
            return out, None
        except jinja2.UndefinedError as e:
            return None, self._undefined(str(e.message))
        except TemplateLimitError as e:
            return None, (f"cannot render `{{key}}`: {e}", _TEMPLATE_LIMITS_HINT)
        except Exception as e:  # syntax errors, sandbox refusals, errors raised by filters, recursion
            msg = getattr(e, "message", None) or str(e) or type(e).__name__
            return None, (f"cannot render `{{key}}`: {msg}", "params are written {{ params.NAME }}")

    def _undefined(self, message: str) -> tuple[str, str]:
        m = re.search(r"has no attribute '([^']*)'", message) or re.search(r"'([^']*)' is undefined", message)
        name = m.group(1) if m else message
        if "has no attribute" in message:
            hint = did_you_mean(name, self.current) or (
                f"defined params: {', '.join(self.current)}" if self.current else "declare it under `params:`"
            )
            return f"`{{key}}` uses undefined param {shown(name)}", hint
        return f"`{{key}}` uses undefined variable {shown(name)}", "params are written {{ params.NAME }}"


def _lower_refs(
    spec: WorkflowSpec,
    rendered: Mapping[str, tuple[str | None, dict[str, str], list[str]]],
    problems: list[Problem],
) -> dict[str, output_refs.Lowered]:
    """Each allocation's rendered texts with its `{{ outputs... }}` references turned into shell (output_refs)."""
    producers = {a.name: a for a in spec.allocations}
    out: dict[str, output_refs.Lowered] = {}
    for a in spec.allocations:
        entry, env, setup = rendered[a.name]
        try:
            out[a.name] = output_refs.lower(entry, env, setup, producers, a.name)
        except output_refs.LowerError as e:
            node = a.where.get(e.key) or a.where.get("setup[0]") or a.node
            problems.append(problem_at(spec.file, node, e.message, e.hint))
    return out


def _lower(
    a: AllocationSpec, dependency_of: Mapping[str, Dependency | None], is_failure_parent: bool
) -> tuple[Dependency | None, list[tuple[str, Dependency]]]:
    """The allocation's dependency and the join jobs it needs (name, dependency), in submission order."""
    joins: list[tuple[str, Dependency]] = []
    and_terms: list[DependencyTerm] = []
    for d in a.depends_on:
        and_terms.extend(_terms(d.parent, d.condition, dependency_of))
    or_terms: list[DependencyTerm] = []
    for d in a.depends_on_any:
        terms = _terms(d.parent, d.condition, dependency_of)
        if len(terms) == 1:
            or_terms.append(terms[0])
        else:  # an AND inside the OR: its own join job
            name = f"{a.name}+failed.{d.parent}"
            joins.append((name, Dependency("all", tuple(terms))))
            or_terms.append(DependencyTerm("afterok", name))
    and_terms = _dedupe(and_terms)
    or_terms = _dedupe(or_terms)
    if len(or_terms) == 1:
        and_terms = _dedupe(and_terms + or_terms)
    elif or_terms:
        # A pure OR is fine natively, unless it must be ANDed: with depends_on, or by a failure child inheriting it.
        if not and_terms and not is_failure_parent:
            return Dependency("any", tuple(or_terms)), joins
        name = f"{a.name}+any"
        joins.append((name, Dependency("any", tuple(or_terms))))
        and_terms.append(DependencyTerm("afterok", name))
    return (Dependency("all", tuple(and_terms)) if and_terms else None), joins


def _terms(parent: str, condition: str, dependency_of: Mapping[str, Dependency | None]) -> list[DependencyTerm]:
    if condition != "failure":
        return [DependencyTerm(_LOWERING[condition], parent)]  # type: ignore[arg-type]
    terms = [DependencyTerm("afternotok", parent)]
    inherited = dependency_of.get(parent)
    if inherited is not None:
        # _lower guarantees a failure parent's dependency is AND-only (its OR goes through a join job).
        assert inherited.join == "all" or len(inherited.terms) == 1, "failure parent with an OR dependency"
        for t in inherited.terms:
            terms.append(DependencyTerm("afterok", t.parent) if t.kind == "aftercorr" else t)
    return terms


def _dedupe(terms: list[DependencyTerm]) -> list[DependencyTerm]:
    return list(dict.fromkeys(terms))


def _allocation_job(
    workflow: str,
    a: AllocationSpec,
    dependency: Dependency | None,
    lowered: output_refs.Lowered,
    renderer: render.Renderer,
) -> PlannedJob:
    entrypoint, setup = lowered.entrypoint, lowered.setup
    edges = tuple(Edge(d.parent, d.condition, "all") for d in a.depends_on) + tuple(
        Edge(d.parent, d.condition, "any") for d in a.depends_on_any
    )
    job = PlannedJob(
        name=a.name,
        kind="allocation",
        options=dict(a.options),
        script="",
        array=a.array,
        tasks=len(a.indexes) if a.indexes is not None else None,
        dependency=dependency,
        edges=edges,
        retries=a.retries,
        option_sources=a.merged.describe() if a.merged is not None else None,
        walltime=a.walltime,
        on_failure=a.on_failure or "continue",
        outputs=list(a.outputs),
        stop_if=a.stop_if[0] if a.stop_if else None,
    )
    options = render.sbatch_options(job)
    keys = [f"SLURMDAG_MATRIX_{k.upper()}" for k in (a.matrix.keys if a.matrix else ())]
    shebang, shell, body = _script_parts(a)
    ctx = render.ScriptContext(
        workflow=workflow,
        name=a.name,
        kind="allocation",
        directives=render.directive_lines(options),
        env=lowered.env,
        env_words=lowered.env_words,
        output_reads=lowered.reads,
        output_checks=output_refs.producer_lines(
            a.outputs, "_slurmdag_end" if a.on_failure == "stop" or a.stop_if else None
        ),
        task_group=a.is_task_group,
        matrix_keys=keys,
        matrix_rows=a.matrix_rows(),
        setup=setup,
        entrypoint=entrypoint,
        script_path=a.script_path,
        script_body=body,
        shebang=shebang,
        shell=shell,
        retries=a.retries,
        stop_dag=a.on_failure == "stop",
        stop_if=a.stop_if[0] if a.stop_if else None,
        stop_if_shell=stop_if_lang.shell(a.stop_if[1]) if a.stop_if else [],
    )
    job.script = renderer.render(ctx, dict(options))
    return job


def _script_parts(a: AllocationSpec) -> tuple[str, str, str | None]:
    """(#! line, shell kind, text placed verbatim) of an allocation's batch script.

    A shell script keeps its own #! line (so `#!/bin/bash -l` stays a login shell) and its whole text after it:
    slurmdag's lines come first, so sbatch ignores the script's own #SBATCH lines (already merged into ours). Any
    other interpreter gets no code from slurmdag: its text starts at its first command, after our #SBATCH block.
    """
    if a.script is None:
        return "#!/bin/bash", "bash", a.script_body
    shebang = a.script.shebang or "#!/bin/bash"
    kind = shell_kind(shebang)
    if kind == "none":
        return shebang, kind, a.script.body
    return shebang, kind, render.strip_shebang(a.script_body or "")
