"""Site policy: the limits one DAG must stay within, where each came from, and the check of a Plan against them.

Sources, loosest first: built-in defaults, the site file (its path is fixed by the installation, see `site`), the
user's config, the workflow itself. Each later source may only tighten a limit; a value that would loosen one is
ignored with a warning naming the limit. Parsing, merging and checking are pure; `read_policy` is the only I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmdag.compiler.spec import did_you_mean, problem_at
from slurmdag.compiler.yamlsrc import MapNode, Node, ScalarNode, SeqNode, parse_yaml, type_name
from slurmdag.model import slurm_values as wt
from slurmdag.model.errors import InputError, Problem
from slurmdag.model.plan import Plan, PlannedJob

BUILTIN = "built-in default"


@dataclass(frozen=True)
class LimitDef:
    name: str
    kind: str  # "max" (smaller is tighter), "min" (larger is tighter), "subset" (fewer is tighter)
    parse: Callable[[Node], Any]
    default: Any  # None: unlimited
    doc: str

    def show(self, value: Any) -> str:
        if value is None:
            return "none" if self.kind == "min" else "unlimited"
        if self.name == "max_walltime":
            return wt.format_walltime(value)
        if self.kind == "subset":
            return ", ".join(sorted(value)) or "(none)"
        if self.name == "min_poll_interval":
            return f"{value:g} s"
        return str(value)


class _BadValueError(Exception):
    pass


def _int(node: Node) -> int:
    v = node.value
    if not isinstance(node, ScalarNode) or isinstance(v, bool) or not isinstance(v, int):
        raise _BadValueError(f"must be an integer, not {type_name(node)}")
    if v < 1:
        raise _BadValueError(f"must be at least 1, not {v}")
    return v


def _seconds(node: Node) -> float:
    v = node.value
    if not isinstance(node, ScalarNode) or isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise _BadValueError("must be a number of seconds (0 or more)")
    return float(v)


def _walltime(node: Node) -> int:
    if not isinstance(node, ScalarNode):
        raise _BadValueError(f"must be a walltime, not {type_name(node)}")
    try:
        return wt.parse_walltime(node.value)
    except ValueError as e:
        raise _BadValueError(f"invalid walltime {node.value!r}: {e}") from None


def _names(node: Node) -> frozenset[str]:
    if not isinstance(node, SeqNode) or not all(isinstance(i.value, str) for i in node.value):
        raise _BadValueError("must be a list of partition names")
    return frozenset(i.value for i in node.value)


LIMITS: dict[str, LimitDef] = {
    d.name: d
    for d in (
        LimitDef("max_allocations", "max", _int, 1000, "allocations per DAG"),
        LimitDef("max_array_size", "max", _int, None, "tasks per task group"),
        LimitDef("max_nodes_per_allocation", "max", _int, None, "nodes one allocation (one task) may ask for"),
        LimitDef(
            "max_nodes_per_dag", "max", _int, None, "nodes summed over the DAG (a task group counts nodes x tasks)"
        ),
        LimitDef("max_walltime", "max", _walltime, None, "walltime of one allocation"),
        LimitDef("allowed_partitions", "subset", _names, None, "partitions a DAG may use"),
        LimitDef("max_concurrent", "max", _int, None, "allocations (and tasks) of one DAG running at once"),
        LimitDef("min_poll_interval", "min", _seconds, None, "seconds between two reconciler/watch polls"),
    )
}


@dataclass(frozen=True)
class Limit:
    name: str
    value: Any  # None: unlimited
    source: str  # the file (or "built-in default", "workflow <file>") that set it

    def describe(self) -> str:
        return f"{self.name} = {LIMITS[self.name].show(self.value)} (set by {self.source})"


@dataclass
class Policy:
    limits: dict[str, Limit]
    warnings: list[Problem] = field(default_factory=list)

    def value(self, name: str) -> Any:
        return self.limits[name].value

    def __getitem__(self, name: str) -> Limit:
        return self.limits[name]


@dataclass
class Source:
    """One layer of limits: where it was read from and each limit's value with the node it was written at."""

    label: str
    values: dict[str, tuple[Any, Node | None]]


def default_policy() -> Policy:
    return Policy({d.name: Limit(d.name, d.default, BUILTIN) for d in LIMITS.values()})


# --- parsing -------------------------------------------------------------------------------------------------------


def parse_limits(
    node: Node | None, label: str, where: str = "", settings: frozenset[str] = frozenset()
) -> tuple[Source, list[Problem]]:
    """A mapping of limit name -> value; unknown names and bad values are problems (`where` prefixes key paths).
    Keys in `settings` are not limits and are left to their own reader."""
    values: dict[str, tuple[Any, Node | None]] = {}
    problems: list[Problem] = []
    if node is None or (isinstance(node, ScalarNode) and node.value is None):
        return Source(label, values), problems
    if not isinstance(node, MapNode):
        return Source(label, values), [
            problem_at(label, node, f"{where or 'the policy'} must be a mapping of limit: value")
        ]
    for key, value in node.value.items():
        if key in settings:
            continue
        d = LIMITS.get(key)
        if d is None:
            hint = did_you_mean(key, LIMITS) or f"known limits: {', '.join(LIMITS)}"
            problems.append(problem_at(label, node.keys[key], f"unknown limit {key!r}", hint))
            continue
        if isinstance(value, ScalarNode) and value.value is None:
            continue  # `key:` with no value: not set
        try:
            values[key] = (d.parse(value), value)
        except _BadValueError as e:
            problems.append(problem_at(label, value, f"`{where}{key}` {e}"))
    return Source(label, values), problems


def parse_site(text: str, file: str) -> Source:
    """The site file: a flat mapping of limits. Any problem refuses (an unreadable policy must not mean none)."""
    source, problems = parse_limits(parse_yaml(text, file), file, settings=SITE_SETTINGS)
    if problems:
        raise InputError(problems)
    return source


# Keys of the site file that are settings, not limits.
SITE_SETTINGS = frozenset({"backend", "auto_array"})


def parse_site_backend(text: str, file: str) -> str | None:
    """The site file's `backend:` (auto, cli or pyslurm): the backend used when neither --backend nor
    $SLURMDAG_BACKEND says. A bad value refuses, located."""
    from slurmdag.backends.choice import CHOICES

    root = parse_yaml(text, file)
    if not isinstance(root, MapNode) or "backend" not in root.value:
        return None
    node = root.value["backend"]
    if not isinstance(node, ScalarNode) or node.value not in CHOICES:
        raise InputError(
            problem_at(file, node, f"`backend` must be one of {', '.join(CHOICES)}", "e.g. `backend: cli`")
        )
    return str(node.value)


def read_site_backend(path: Path) -> str | None:
    text = _read(path)
    return None if text is None else parse_site_backend(text, str(path))


def parse_site_auto_array(text: str, file: str) -> bool:
    """The site file's `auto_array:` (true or false, default false): whether a workflow that does not say packs its
    sibling allocations into array jobs (compiler/packing.py). A default, not a limit: the workflow's own key wins."""
    root = parse_yaml(text, file)
    if not isinstance(root, MapNode) or "auto_array" not in root.value:
        return False
    node = root.value["auto_array"]
    if isinstance(node, ScalarNode) and node.value is None:
        return False
    if not isinstance(node, ScalarNode) or not isinstance(node.value, bool):
        raise InputError(problem_at(file, node, "`auto_array` must be true or false", "e.g. `auto_array: true`"))
    return node.value


def read_site_auto_array(path: Path) -> bool:
    text = _read(path)
    return False if text is None else parse_site_auto_array(text, str(path))


def parse_user_config(text: str, file: str) -> tuple[Source, list[Problem]]:
    """The user's config: limits under `policy:`. Its problems are warnings: it can only tighten anyway."""
    root = parse_yaml(text, file)
    if root is None or (isinstance(root, ScalarNode) and root.value is None):
        return Source(file, {}), []
    if not isinstance(root, MapNode):
        return Source(file, {}), [problem_at(file, root, "the config must be a mapping")]
    return parse_limits(root.value.get("policy"), file, "policy.")


# --- merging -------------------------------------------------------------------------------------------------------


def _tighter(d: LimitDef, current: Any, new: Any) -> tuple[Any, Any]:
    """(effective value, the part of `new` that would loosen it or None)."""
    if current is None:
        return new, None
    if d.kind == "subset":
        extra = new - current
        return new & current, (extra or None)
    if d.kind == "max":
        return (new, None) if new <= current else (current, new)
    return (new, None) if new >= current else (current, new)


def effective(sources: Iterable[Source]) -> Policy:
    """Built-in defaults tightened by each source in turn; loosening attempts become warnings."""
    policy = default_policy()
    for source in sources:
        for name, (value, node) in source.values.items():
            d = LIMITS[name]
            current = policy.limits[name]
            new, loosening = _tighter(d, current.value, value)
            if loosening is not None:
                asked = d.show(loosening)
                policy.warnings.append(
                    problem_at(
                        source.label,
                        node,
                        f"{name} {asked} ignored: it would loosen {current.describe()}",
                        "a user config or a workflow can only tighten the site's limits",
                    )
                )
            if new != current.value:
                policy.limits[name] = Limit(name, new, source.label)
    return policy


def read_policy(site_path: Path, user_path: Path | None, workflow: Source | None = None) -> Policy:
    """Read the site file (absent: built-in defaults) and the user's config (absent: nothing), then merge."""
    sources: list[Source] = []
    site_text = _read(site_path)
    if site_text is not None:
        source = parse_site(site_text, str(site_path))
        sources.append(source)
        warnings = _site_file_warnings(site_path)
    else:
        warnings = []
    user_problems: list[Problem] = []
    if user_path is not None:
        user_text = _read(user_path, required=False)
        if user_text is not None:
            source, user_problems = parse_user_config(user_text, str(user_path))
            sources.append(source)
    if workflow is not None:
        sources.append(workflow)
    policy = effective(sources)
    policy.warnings[:0] = warnings + user_problems
    return policy


def _read(path: Path, required: bool = True) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        if not required:
            return None
        # A site file that exists but cannot be read must not silently mean "no limits".
        raise InputError(
            Problem(
                f"cannot read the site policy: {e}",
                str(path),
                hint="ask your site admin: the policy file must be readable by every user",
            )
        ) from None


def _site_file_warnings(path: Path) -> list[Problem]:
    try:
        st = path.stat()
    except OSError:
        return []
    if st.st_mode & 0o022:
        return [
            Problem(
                "the site policy file is writable by users other than its owner, so users can change it",
                str(path),
                hint="chmod go-w it",
            )
        ]
    return []


def workflow_source(plan: Plan) -> Source | None:
    """A workflow's own tightening: its `max_concurrent`."""
    value = getattr(plan, "max_concurrent", None)
    if value is None:
        return None
    return Source(f"workflow {plan.source}" if plan.source else "the workflow", {"max_concurrent": (value, None)})


# --- checking a plan -----------------------------------------------------------------------------------------------


def _nodes(job: PlannedJob) -> int:
    text = str(job.options.get("nodes") or "1")
    return int(text.split("-")[-1]) if text.replace("-", "").isdigit() else 1


def check_plan(plan: Plan, policy: Policy, default_partition: str | None = None) -> list[Problem]:
    """Every limit the plan exceeds: naming the limit, its value, the value asked for and who set the limit."""
    file = plan.source or plan.workflow
    problems: list[Problem] = []

    def over(name: str, asked: str, what: str) -> None:
        limit = policy[name]
        problems.append(
            Problem(
                f"{what} asks for {asked}, more than {limit.describe()}",
                file,
                hint="change the workflow, or ask your site admin"
                if limit.source != BUILTIN or name != "max_allocations"
                else "split the workflow or use task groups",
            )
        )

    allocations = plan.allocations()
    cap = policy.value("max_allocations")
    if cap is not None and len(allocations) > cap:
        over("max_allocations", f"{len(allocations)} allocations", "the workflow")
    total_nodes = 0
    for job in allocations:
        nodes = _nodes(job)
        tasks = job.tasks or 1
        total_nodes += nodes * tasks
        cap = policy.value("max_array_size")
        if cap is not None and job.tasks and job.tasks > cap:
            over("max_array_size", f"{job.tasks} tasks", f"allocation {job.name!r}")
        cap = policy.value("max_nodes_per_allocation")
        if cap is not None and nodes > cap:
            over("max_nodes_per_allocation", f"{nodes} nodes", f"allocation {job.name!r}")
        cap = policy.value("max_walltime")
        if cap is not None and job.walltime is not None and wt.walltime_exceeds(job.walltime, cap):
            over("max_walltime", wt.format_walltime(job.walltime), f"allocation {job.name!r}")
        allowed = policy.value("allowed_partitions")
        partition = job.options.get("partition") or default_partition
        if allowed is not None and partition:
            for p in partition.split(","):
                if p not in allowed:
                    limit = policy["allowed_partitions"]
                    problems.append(
                        Problem(
                            f"allocation {job.name!r} asks for partition {p!r}, not in {limit.describe()}",
                            file,
                            hint="use one of the allowed partitions",
                        )
                    )
    cap = policy.value("max_walltime")
    for job in plan.jobs:  # a group job runs its members one after another: its walltime is their sum
        if job.kind == "host" and cap is not None and job.walltime is not None:
            if wt.walltime_exceeds(job.walltime, cap):
                over("max_walltime", wt.format_walltime(job.walltime), f"group job {job.name!r}")
    cap = policy.value("max_nodes_per_dag")
    if cap is not None and total_nodes > cap:
        over("max_nodes_per_dag", f"{total_nodes} nodes in total", "the workflow")
    return problems


def env_note() -> str | None:
    """Said by `policy show` when root points the site file elsewhere (never honoured for other users)."""
    from slurmdag.policy.site_paths import ROOT_OVERRIDE_ENV

    if os.environ.get(ROOT_OVERRIDE_ENV):
        return f"{ROOT_OVERRIDE_ENV} is set; it is honoured only for root" + (
            "" if os.getuid() == 0 else ", so it is ignored here"
        )
    return None
