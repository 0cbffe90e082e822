"""`{{ outputs.<allocation>.<name> }}`: one allocation's published outputs in a later allocation's entrypoint, env
and setup, read by the child's own job when it starts (docs/passing-data.md). Pure.

Three steps, at three places of the compile:

1. `add_edges` (before the graph is checked): every reference is found in the template text (Jinja's own parser,
   so `{{ outputs["fetch-a"][3].x }}` counts too), checked against the workflow (the allocation exists, is not the
   referencing one nor downstream of it, declares the output, has the task) and turned into a `success` edge
   unless the allocation is already a parent; a parent through any other condition is an error, since its
   outputs may not exist then.
2. While templates are rendered, `outputs` is a `RefsVariable`: a reference renders as a marker (NUL-delimited,
   so no user text can hold one) that says which value it stands for.
3. `lower` turns the markers of one allocation into shell: lines at the start of its job read each value once into
   a variable (`_slurmdag_oN`, failing with "output X of Y is missing" when the file is not there), and each
   marker becomes an expansion of that variable that yields the value literally whatever it holds: `"$_slurmdag_oN"`
   outside quotes, `${_slurmdag_oN}` inside double quotes (a marker inside single quotes is refused: nothing expands
   there). In `env` values, which slurmdag quotes itself, literal pieces and expansions are joined exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import jinja2
from jinja2 import nodes

from slurmdag.compiler.spec import AllocationSpec, DepSpec, WorkflowSpec, did_you_mean, problem_at
from slurmdag.compiler.yamlsrc import Node
from slurmdag.model import run_layout
from slurmdag.model.errors import Problem, shown

VARIABLE = "outputs"
_MARKERS = ("{{", "{%", "{#")
REF_HINT = "write {{ outputs.ALLOCATION.NAME }}, or {{ outputs.ALLOCATION[TASK].NAME }} for one task of a task group"


@dataclass(frozen=True)
class OutputRef:
    allocation: str
    task: int | None  # a task group's one task; None: a single job's value, or every task's as a JSON list
    name: str


# --- 1. finding references, checking them, adding their edges ---------------------------------------------------


def find(text: str) -> tuple[list[OutputRef], list[str]]:
    """The references in one template text, and what is wrong with uses of `outputs` that are not one.
    Syntax errors are left to the renderer, which reports them with the text's other problems."""
    if not any(m in text for m in _MARKERS) or VARIABLE not in text:
        return [], []
    try:
        tree = _PARSER.parse(text)
    except jinja2.TemplateSyntaxError:
        return [], []
    refs: list[OutputRef] = []
    problems: list[str] = []
    _walk(tree, refs, problems)
    return refs, problems


_PARSER = jinja2.Environment()


def _walk(node: nodes.Node, refs: list[OutputRef], problems: list[str]) -> None:
    if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        chain = _chain(node)
        if chain is not None:
            ref = _ref(chain)
            if isinstance(ref, OutputRef):
                refs.append(ref)
            else:
                problems.append(ref)
            return
    for child in node.iter_child_nodes():
        _walk(child, refs, problems)


def _chain(node: nodes.Node) -> list[object] | None:
    """The accessors of `outputs...` from the root outwards, or None if `node` is not rooted at `outputs`."""
    steps: list[object] = []
    while True:
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            steps.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            if _chain(node.node) is not None:
                return ["<an index that is not a number>"]
            return None
        elif isinstance(node, nodes.Name):
            return steps[::-1] if node.name == VARIABLE and node.ctx == "load" else None
        else:
            return None


def _ref(chain: list[object]) -> OutputRef | str:
    written = "outputs" + "".join(f".{s}" if isinstance(s, str) else f"[{s!r}]" for s in chain)
    if len(chain) == 2 and isinstance(chain[0], str) and isinstance(chain[1], str):
        return OutputRef(chain[0], None, chain[1])
    if (
        len(chain) == 3
        and isinstance(chain[0], str)
        and isinstance(chain[1], int)
        and not isinstance(chain[1], bool)
        and isinstance(chain[2], str)
    ):
        return OutputRef(chain[0], chain[1], chain[2])
    return f"`{{key}}` uses {shown(written)}, which is not an output"


def scoped(allocation: str, referencing: str, names: Mapping[str, object]) -> str:
    """The allocation a reference names: inside a sub-workflow (`uses:`, names `<using>.<theirs>`) its own
    allocations come first, so an included file's `{{ outputs.search.x }}` reads its own copy of `search`."""
    scope = referencing.split(".")[:-1]
    for i in range(len(scope), 0, -1):
        candidate = ".".join(scope[:i]) + "." + allocation
        if candidate in names:
            return candidate
    return allocation


def add_edges(spec: WorkflowSpec) -> list[Problem]:
    """Check every reference of `spec` and give each referencing allocation a `success` edge on the allocations
    it reads (unless it already depends on them). Returns the problems; idempotent."""
    problems: list[Problem] = []
    by_name = {a.name: a for a in spec.allocations if a.name}
    children: dict[str, set[str]] = {}
    for a in spec.allocations:
        for d in (*a.depends_on, *a.depends_on_any):
            children.setdefault(d.parent, set()).add(a.name)
    for a in spec.allocations:
        parents = {d.parent: d for d in (*a.depends_on, *a.depends_on_any)}
        in_any = {d.parent for d in a.depends_on_any}
        for key, text, node in texts(a):
            refs, bad = find(text)
            for message in bad:
                problems.append(problem_at(spec.file, node, message.replace("{key}", key), REF_HINT))
            for written in refs:
                ref = OutputRef(scoped(written.allocation, a.name, by_name), written.task, written.name)
                failed, hint = _check(ref, a, by_name, children, parents, in_any)
                if failed:
                    problems.append(problem_at(spec.file, node, failed.replace("{key}", key), hint))
                elif ref.allocation not in parents:
                    dep = DepSpec(ref.allocation, "success", node or a.node)
                    a.depends_on.append(dep)
                    parents[ref.allocation] = dep
                    children.setdefault(ref.allocation, set()).add(a.name)
    return problems


def texts(a: AllocationSpec) -> Iterator[tuple[str, str, Node | None]]:
    """(key, template text, node) of every text of `a` that may hold references."""
    if a.entrypoint is not None:
        yield "entrypoint", a.entrypoint, a.where.get("entrypoint")
    for k, v in a.env.items():
        yield f"env.{k}", v, a.where.get(f"env.{k}")
    for i, line in enumerate(a.setup):
        yield "setup", line, a.where.get(f"setup[{i}]")


def _check(
    ref: OutputRef,
    a: AllocationSpec,
    by_name: Mapping[str, AllocationSpec],
    children: Mapping[str, set[str]],
    parents: Mapping[str, DepSpec],
    in_any: set[str],
) -> tuple[str | None, str | None]:
    what = f"`{{key}}` of {shown(a.name)} uses {_written(ref)}"
    producer = by_name.get(ref.allocation)
    if producer is None:
        hint = did_you_mean(ref.allocation, by_name) or "outputs.ALLOCATION.NAME names an allocation of this workflow"
        return f"{what}, but there is no allocation {shown(ref.allocation)}", hint
    if producer is a:
        return f"{what}: an allocation cannot use its own outputs", "read them from $SLURMDAG_OUTPUTS in the job itself"
    if ref.name not in producer.outputs:
        declared = ", ".join(producer.outputs)
        hint = (
            did_you_mean(ref.name, producer.outputs) or f"its outputs: {declared}"
            if producer.outputs
            else f"declare it on {shown(producer.name)}: `outputs: [{ref.name}]`"
        )
        return f"{what}, but {shown(producer.name)} declares no output {shown(ref.name)}", hint
    if ref.task is not None:
        if producer.indexes is None:
            return (
                f"{what}, but {shown(producer.name)} is not a task group",
                f"write {{{{ outputs.{producer.name}.{ref.name} }}}}",
            )
        if ref.task not in producer.indexes:
            return f"{what}, but task group {shown(producer.name)} has no task {ref.task}", None
    if _downstream(a.name, ref.allocation, children):
        return (
            f"{what}, but {shown(ref.allocation)} is not upstream of {shown(a.name)}: it runs after it",
            "an allocation can read the outputs of allocations it (directly or indirectly) depends on",
        )
    dep = parents.get(ref.allocation)
    if ref.allocation in in_any:
        return (
            f"{what}, but {shown(ref.allocation)} is in its depends_on_any: it may not have run",
            f"depend on {shown(ref.allocation)} with depends_on (success)",
        )
    if dep is not None and dep.condition not in ("success",):
        return (
            f"{what}, but it depends on {shown(ref.allocation)} with `{dep.condition}`, so "
            f"{shown(ref.allocation)} may not have completed when it starts",
            "outputs are read from allocations that completed: depend on it with `success` (the default)",
        )
    return None, None


def _written(ref: OutputRef) -> str:
    task = "" if ref.task is None else f"[{ref.task}]"
    return f"{{{{ outputs.{ref.allocation}{task}.{ref.name} }}}}"


def _downstream(start: str, target: str, children: Mapping[str, set[str]]) -> bool:
    """Whether `target` depends (directly or not) on `start`."""
    seen = {start}
    stack = [start]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c == target:
                return True
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return False


# --- 2. rendering: markers ----------------------------------------------------------------------------------------

_MARK = re.compile("\x00([^\x00\x01]*)\x01(-?[0-9]*)\x01([^\x00\x01]*)\x00")


def marker(ref: OutputRef) -> str:
    return f"\x00{ref.allocation}\x01{'' if ref.task is None else ref.task}\x01{ref.name}\x00"


class _Task:
    # underscore names only: any other attribute is an output's name (the sandbox never hands out `_` ones)
    def __init__(self, allocation: str, task: int | None):
        self._a, self._t = allocation, task

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return marker(OutputRef(self._a, self._t, name))

    def __getitem__(self, key: object) -> object:
        if isinstance(key, int) and not isinstance(key, bool) and self._t is None:
            return _Task(self._a, key)
        return marker(OutputRef(self._a, self._t, str(key)))


class RefsVariable:
    """The `outputs` variable of the templates: `outputs.A.N`, `outputs.A[i].N` render as markers."""

    def __getattr__(self, allocation: str) -> _Task:
        if allocation.startswith("_"):
            raise AttributeError(allocation)
        return _Task(allocation, None)

    def __getitem__(self, allocation: object) -> _Task:
        return _Task(str(allocation), None)


def without_markers(text: str) -> str:
    """`text` with its references taken out: what must hold no NUL (a marker mangled by a filter leaves one)."""
    return _MARK.sub("", text)


MANGLED = (
    "an output's value is only known when the job starts: use {{ outputs.ALLOCATION.NAME }} as it is, "
    "not inside an expression or through a filter"
)


# --- 3. lowering to shell ------------------------------------------------------------------------------------------


@dataclass
class Lowered:
    reads: list[str]  # shell lines that read every referenced value (they come before env and setup)
    entrypoint: str | None
    env: list[tuple[str, str]]  # values without references (the template quotes them)
    env_words: list[tuple[str, str]]  # values with references: already a shell word
    setup: list[str]


_Var = Callable[[re.Match[str]], str]  # a marker -> the name of the shell variable holding its value


class LowerError(Exception):
    """A reference placed where no expansion can give its value (inside single quotes)."""

    def __init__(self, key: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.key, self.message, self.hint = key, message, hint


def lower(
    entrypoint: str | None,
    env: Mapping[str, str],
    setup: Sequence[str],
    producers: Mapping[str, AllocationSpec],
    referencing: str = "",
) -> Lowered:
    """Markers -> shell for one allocation (see the module's docstring); raises LowerError."""
    variables: dict[OutputRef, str] = {}

    def var(m: re.Match[str]) -> str:
        task = m.group(2)
        ref = OutputRef(scoped(m.group(1), referencing, producers), int(task) if task else None, m.group(3))
        producer = producers.get(ref.allocation)
        if producer is None or ref.name not in producer.outputs:  # `add_edges` checked every reference it found
            raise LowerError("", f"`{{key}}`: {MANGLED}")
        if ref not in variables:
            variables[ref] = f"_slurmdag_o{len(variables) + 1}"
        return variables[ref]

    def at(key: str, fn: Callable[[str, _Var, str], str], text: str) -> str:
        try:
            return fn(text, var, key)
        except LowerError as e:
            e.key = e.key or key
            e.message = e.message.replace("{key}", key)
            raise

    entry = None if entrypoint is None else at("entrypoint", _in_code, entrypoint)
    lines = [at("setup", _in_code, line) for line in setup]
    plain: list[tuple[str, str]] = []
    words: list[tuple[str, str]] = []
    for k, v in env.items():
        if _MARK.search(v):
            words.append((k, at(f"env.{k}", _word, v)))
        else:
            plain.append((k, v))
    reads = _reads(variables, producers)
    return Lowered(reads, entry, plain, words, lines)


def _word(value: str, var: _Var, key: str) -> str:
    """An env value holding markers as one shell word: literal pieces single-quoted, each value "${var}"."""
    out: list[str] = []
    pos = 0
    for m in _MARK.finditer(value):
        if m.start() > pos:
            out.append(_single_quoted(value[pos : m.start()]))
        out.append(f'"${{{var(m)}}}"')
        pos = m.end()
    if pos < len(value):
        out.append(_single_quoted(value[pos:]))
    return "".join(out)


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _in_code(text: str, var: _Var, key: str) -> str:
    """Shell code with each marker replaced by an expansion fit for the quoting it is in."""
    if "\x00" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _MARK.finditer(text):
        out.append(text[pos : m.start()])
        context = _quoting("".join(out))
        if context == "'":
            raise LowerError(
                key,
                f"`{key}` uses {{{{ outputs.{m.group(1)}.{m.group(3)} }}}} inside single quotes, where the shell "
                "expands nothing",
                'put it outside the quotes or inside double quotes: --lr={{ outputs.A.N }} or "{{ outputs.A.N }}"',
            )
        name = var(m)
        out.append(f"${{{name}}}" if context == '"' else f'"${{{name}}}"')
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _quoting(code: str) -> str:
    """The quoting in force at the end of `code`: '' (none), "'" or '"'. Tracks backslashes, $( ) and backticks
    (their inside is unquoted again) well enough for a reference's place; comments count as unquoted."""
    stack: list[str] = [""]
    i = 0
    n = len(code)
    while i < n:
        c = code[i]
        top = stack[-1]
        if top == "'":
            if c == "'":
                stack.pop()
        elif c == "\\":
            i += 1
        elif top == '"' and c == '"':
            stack.pop()
        elif c == "$" and code.startswith("$(", i):
            stack.append("(")
            i += 1
        elif c == "`":
            if top == "`":
                stack.pop()
            else:
                stack.append("`")
        elif top in ("", "(", "`") and c == "'":
            stack.append("'")
        elif top in ("", "(", "`") and c == '"':
            stack.append('"')
        elif top == "(" and c == ")":
            stack.pop()
        i += 1
    top = stack[-1]
    return top if top in ("'", '"') else ""


def producer_lines(names: Sequence[str], then: str | None = None) -> list[str]:
    """A job that declares `outputs`: clear what an earlier run left, and fail at its end (exit 1) naming every
    declared output it did not write. An EXIT trap, so an `exit 0` in the entrypoint is checked too; a job that
    failed anyway keeps its own exit status. `then`: the EXIT handler set before (on_failure: stop's), which this
    trap replaces: it is called with the final status."""
    if not names:
        return []
    listed = " ".join(names)  # identifiers (run_layout.OUTPUT_NAME_RE): nothing to quote
    files = " ".join(f'"$SLURMDAG_OUTPUTS/{n}"' for n in names)
    return [
        'mkdir -p -- "$SLURMDAG_OUTPUTS"',
        f"rm -f -- {files}",
        "_slurmdag_check_outputs() {",
        "  _slurmdag_rc=$?",
        f'  [ "$_slurmdag_rc" -ne 0 ] || for _slurmdag_name in {listed}; do',
        '    if [ ! -f "$SLURMDAG_OUTPUTS/$_slurmdag_name" ]; then',
        '      echo "slurmdag: missing output $_slurmdag_name (not written to $SLURMDAG_OUTPUTS)" >&2',
        "      _slurmdag_rc=1",
        "    fi",
        "  done",
        *(["  trap - EXIT", f'  {then} "$_slurmdag_rc"'] if then else []),
        '  exit "$_slurmdag_rc"',
        "}",
        "trap _slurmdag_check_outputs EXIT",
    ]


def _reads(variables: Mapping[OutputRef, str], producers: Mapping[str, AllocationSpec]) -> list[str]:
    if not variables:
        return []
    lines: list[str] = []
    needs_list = any(r.task is None and producers[r.allocation].indexes is not None for r in variables)
    lines.extend(READ_FUNCTION.split("\n"))
    if needs_list:
        lines.extend(JSON_LIST_FUNCTION.split("\n"))
    for ref, name in variables.items():
        producer = producers[ref.allocation]
        folder = run_layout.outputs_dir_shell(ref.allocation, False)
        alloc = _single_quoted(ref.allocation)
        if ref.task is None and producer.indexes is not None:
            ranges = _ranges(sorted(producer.indexes))
            lines.append(f"{name}=$(_slurmdag_json_list {alloc} {ref.name} {folder} {ranges})")
        else:
            task = "" if ref.task is None else f"/{ref.task}"
            what = alloc if ref.task is None else _single_quoted(f"{ref.allocation} task {ref.task}")
            lines.append(f'{name}=$(_slurmdag_read {what} {ref.name} {folder[:-1]}{task}/{ref.name}")')
    return lines


def _ranges(indexes: Sequence[int]) -> str:
    """0,1,2,3,7 -> 0-3,7 (read by the awk of JSON_LIST_FUNCTION)."""
    out: list[str] = []
    start = prev = indexes[0]
    for i in [*indexes[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(out)


# Reads one published value; a missing file fails the job (set -e: the assignment's status is the function's).
READ_FUNCTION = """_slurmdag_read() {  # WHO NAME FILE: a published output's value (trailing newlines dropped)
  if [ ! -f "$3" ]; then
    echo "slurmdag: output $2 of $1 is missing ($3 does not exist)" >&2
    exit 1
  fi
  cat -- "$3"
}"""

# Every task's value of a task group as a JSON list of strings, in index order; POSIX awk, byte by byte (C locale:
# UTF-8 passes through unchanged), control characters escaped. Arguments reach awk through ENVIRON: `-v` would
# interpret backslashes in them.
JSON_LIST_FUNCTION = r"""_slurmdag_json_list() {  # ALLOCATION NAME DIR RANGES: ["value of task 0", ...]
  _sd_alloc="$1" _sd_name="$2" _sd_dir="$3" _sd_ranges="$4" LC_ALL=C awk '
    function esc(s,    out, i, c) {
      out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "\"") out = out "\\" c
        else if (c in ctl) out = out ctl[c]
        else out = out c
      }
      return out
    }
    BEGIN {
      alloc = ENVIRON["_sd_alloc"]; name = ENVIRON["_sd_name"]; dir = ENVIRON["_sd_dir"]; ranges = ENVIRON["_sd_ranges"]
      for (i = 1; i < 32; i++) ctl[sprintf("%c", i)] = sprintf("\\u%04x", i)
      ctl["\n"] = "\\n"; ctl["\t"] = "\\t"; ctl["\r"] = "\\r"
      printf "["
      n = split(ranges, parts, ",")
      first = 1
      for (p = 1; p <= n; p++) {
        if (split(parts[p], ab, "-") == 2) { lo = ab[1] + 0; hi = ab[2] + 0 } else { lo = parts[p] + 0; hi = lo }
        for (t = lo; t <= hi; t++) {
          f = dir "/" t "/" name
          r = (getline line < f)
          if (r < 0) {
            printf "slurmdag: output %s of %s task %d is missing (%s does not exist)\n", \
              name, alloc, t, f > "/dev/stderr"
            exit 1
          }
          v = (r > 0 ? line : "")
          while ((getline line < f) > 0) v = v "\n" line
          close(f)
          sub(/\n+$/, "", v)
          printf "%s\"%s\"", (first ? "" : ","), esc(v)
          first = 0
        }
      }
      printf "]"
    }'
}"""
