"""Port existing sbatch scripts and bash chains of `sbatch --dependency` calls into slurmdag's workflow format.

Pure apart from reading the batch scripts a chain submits (through a `read_text` callable the caller may replace).
The chain is read with `bash_lexer` and then *run* symbolically: variables, `$(...)`, arithmetic, `for`/`while`
loops and `if`s whose values are known here are evaluated the way bash would, and every `sbatch` call that runs
becomes an allocation. A job id is a symbol, never a number:

    A=$(sbatch --parsable a.sh)            B=`sbatch b.sh | cut -d' ' -f4`       C=$(sbatch ... | awk '{print $4}')
    ID=${OUT##* }   (and other cuts)       DEP="afterok:$A:$B"   (string variables, substituted)
    for i in {1..5}; do J=$(sbatch --parsable -d afterok:$J x.sh); done     (unrolled: the bounds are known)
    sbatch -d afterok:$A,afternotok:$B --array=0-9%2 -N 2 x.sh       sbatch --wrap "python x.py"

What cannot be known here — a loop over a script argument, an `if` on a file's existence, a command's output — is
not guessed: it becomes a warning with its line, and the user finishes the port by hand. Nothing is dropped
silently: every option or dependency not carried over is a warning saying why.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from slurmdag.compiler.script_directives import ScriptDirectives, read_directives
from slurmdag.compiler.spec import NAME_RE
from slurmdag.model.errors import InputError, InternalError, Problem
from slurmdag.model.sbatch_options import CLIENT_ONLY, ParsedOption, Token, parse_args
from slurmdag.porting.bash_lexer import (
    BashSyntaxError,
    Command,
    ForArith,
    ForIn,
    Group,
    If,
    Node,
    Opaque,
    Part,
    Simple,
    While,
    Word,
    assignment,
    indexed_assignment,
    lex_commands,
    parse_script,
)

NAME_MAX = 64  # compiler.spec.NAME_RE: 1-64 characters

# sbatch long option -> slurmdag allocation key; the rest stays under `sbatch:` as raw flags.
KEY_FOR_OPTION: dict[str, str] = {
    "nodes": "nodes",
    "ntasks": "ntasks",
    "ntasks-per-node": "ntasks_per_node",
    "cpus-per-task": "cpus_per_task",
    "mem": "mem",
    "mem-per-cpu": "mem_per_cpu",
    "gpus": "gpus",
    "gres": "gres",
    "constraint": "constraint",
    "account": "account",
    "qos": "qos",
    "reservation": "reservation",
    "chdir": "workdir",
    "output": "output",
    "error": "error",
    "partition": "partition",
    "time": "walltime",
}
INT_KEYS = {"nodes", "ntasks", "ntasks_per_node", "cpus_per_task", "gpus"}
CONDITION = {"afterok": "success", "afternotok": "failure", "afterany": "any", "aftercorr": "corresponding"}
NO_EQUIVALENT = {"after", "afterburstbuffer", "expand"}
# Commands that change nothing a port needs: they succeed and print nothing that matters.
QUIET = {"set", "shopt", "true", ":", "sleep", "wait", "shift", "unset", "trap", "umask", "ulimit"}
# Commands that only read or print: nothing to port, but what they print or whether they succeed is not known here.
QUERIES = {"date", "squeue", "sacct", "sinfo", "hostname", "whoami", "id", "ls", "cat", "grep", "wc", "head", "tail"}
HARMLESS = QUIET | QUERIES | {"echo", "printf"}
# Pipe stages that cut the job id out of sbatch's output ("Submitted batch job N").
ID_FILTERS = {"cut", "awk", "grep", "sed", "tr", "head", "tail", "xargs", "sort", "egrep", "perl", "rev"}
MAX_ITERATIONS = 1000  # per loop: a chain that submits more than this is unrolled no further (with a warning)


class _Stop(Exception):
    """`exit` at the top level: nothing after it runs."""


class _Return(Exception):
    pass


class _Break(Exception):
    def __init__(self, levels: int = 1):
        self.levels = levels


class _Continue(Exception):
    def __init__(self, levels: int = 1):
        self.levels = levels


@dataclass
class _Alloc:
    key: str  # internal id
    name: str
    line: int
    script: str | None  # absolute path
    script_written: str | None  # the path for the YAML when it is kept as written (`~/...`)
    wrap: str | None
    options: list[ParsedOption]
    deps_all: list[tuple[str, str]] = field(default_factory=list)  # (alloc key, condition)
    deps_any: list[tuple[str, str]] = field(default_factory=list)
    directives: ScriptDirectives | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # the directory sbatch ran in, when a `cd` moved away from the chain's own


@dataclass
class ImportResult:
    workflow: dict[str, Any]
    warnings: list[Problem]

    def to_yaml(self) -> str:
        return to_yaml(self)


class _Markers:
    """Private-use characters that stand for a job id, sbatch's whole message, or an unknown value inside a
    resolved string. Chosen per input so they never occur in it; they never leave the importer (`show`)."""

    def __init__(self, text: str):
        free = (chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
        self.job_l, self.job_r, self.raw_l, self.raw_r, self.unk_l, self.unk_r = (next(free) for _ in range(6))
        self.all = {self.job_l, self.job_r, self.raw_l, self.raw_r, self.unk_l, self.unk_r}
        jl, jr, rl, rr, ul, ur = (
            re.escape(c) for c in (self.job_l, self.job_r, self.raw_l, self.raw_r) + (self.unk_l, self.unk_r)
        )
        self.job_re = re.compile(f"{jl}(a[0-9]+){jr}")
        self.raw_re = re.compile(f"{rl}(a[0-9]+){rr}")
        self.unk_re = re.compile(f"{ul}([0-9]+){ur}")
        self.any_ref_re = re.compile(f"{jl}(a[0-9]+){jr}|{rl}(a[0-9]+){rr}")

    def job(self, key: str) -> str:
        return f"{self.job_l}{key}{self.job_r}"

    def raw(self, key: str) -> str:
        return f"{self.raw_l}{key}{self.raw_r}"

    def unknown(self, index: int) -> str:
        return f"{self.unk_l}{index}{self.unk_r}"

    def clean(self, text: str) -> bool:
        return not any(c in self.all for c in text)


# ---------------------------------------------------------------- the chain, run symbolically


class _Chain:
    def __init__(self, path: str, text: str, out_dir: str, read_text: Callable[[str], str], used_names: set[str]):
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.cwd: str | None = self.base
        self.out_dir = out_dir
        self.read_text = read_text
        self.used_names = used_names
        self.m = _Markers(text)
        self.allocs: list[_Alloc] = []
        self.vars: dict[str, str] = {}
        self.arrays: dict[str, list[str]] = {}
        self.unknown_sources: list[str] = []  # index -> what could not be known, as written
        self.unknown_vars: dict[str, str] = {}  # variable -> why its value is not known
        self.functions: dict[str, Opaque] = {}
        self.positional: list[list[str]] = []  # a function call's $1...; empty at the top level
        self.capture: list[list[str]] = []  # output of echo/printf/sbatch inside $(...)
        self.status: bool | None = True  # did the last command succeed (None: not known here)
        self.loop_depth = 0
        self.uncertain_exit = False  # a `break` was skipped because its condition is not known here
        self.assigning: list[str] = []  # the variable a `$(...)` is being assigned to (names a --wrap job)
        self.warnings: list[Problem] = []
        self.defaulted: set[tuple[int, str]] = set()

    # --- messages

    def warn(self, msg: str, line: int | None, col: int | None = 1, hint: str | None = None) -> None:
        self.warnings.append(Problem(self.show(msg), self.path, line, col, self.show(hint) if hint else None))

    def show(self, text: str) -> str:
        """A resolved string for a human: a job id as `$<allocation>`, sbatch's message as written, an unknown value
        as written in the chain. Nothing private is left."""

        def name(key: str) -> str:
            return next((a.name for a in self.allocs if a.key == key), key)

        text = self.m.job_re.sub(lambda x: f"<job id of {name(x.group(1))}>", text)
        text = self.m.raw_re.sub(lambda x: f"Submitted batch job <job id of {name(x.group(1))}>", text)
        text = self.m.unk_re.sub(lambda x: self.unknown_sources[int(x.group(1))], text)
        return "".join(c for c in text if c not in self.m.all)

    def unknown(self, source: str) -> str:
        self.unknown_sources.append(source)
        return self.m.unknown(len(self.unknown_sources) - 1)

    def is_known(self, text: str) -> bool:
        return self.m.unk_re.search(text) is None

    # --- expansion

    def var(self, name: str, line: int) -> str:
        if name.isdigit() or name in ("@", "*", "#"):
            if self.positional:
                args = self.positional[-1]
                if name == "#":
                    return str(len(args))
                if name in ("@", "*"):
                    return " ".join(args)
                k = int(name)
                return args[k - 1] if 0 < k <= len(args) else ("" if k else self.path)
            if name == "0":
                return self.path
            return self.unknown(f"${name}")
        if name in self.vars:
            return self.vars[name]
        if name in self.arrays:
            return self.arrays[name][0] if self.arrays[name] else ""
        if name == "PWD" and self.cwd is not None:
            return self.cwd
        if name == "HOME":
            return os.path.expanduser("~")
        if name == "?":
            return "0" if self.status else self.unknown("$?")
        return self.unknown(f"${name}")

    def param(self, text: str, line: int, col: int) -> str | list[str]:
        """`${...}`: the forms chains use. A list for `${arr[@]}`."""
        whole = "${" + text + "}"
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[([@*])\]", text)
        if m:
            return list(self.arrays[m.group(1)]) if m.group(1) in self.arrays else [self.unknown(whole)]
        m = re.fullmatch(r"#([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]", text)
        if m:
            arr = self.arrays.get(m.group(1))
            return str(len(arr)) if arr is not None else self.unknown(whole)
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[([^\]]+)\]", text)
        if m:
            if m.group(1) == "BASH_SOURCE" and m.group(2) == "0":
                return self.path
            arr = self.arrays.get(m.group(1))
            k = self.arith(self.expand_text(m.group(2), line, col), line)
            if arr is None or k is None:
                return self.unknown(whole)
            return arr[k] if 0 <= k < len(arr) else ""
        if text == "BASH_SOURCE":
            return self.path
        m = re.fullmatch(r"#([A-Za-z_][A-Za-z0-9_]*|[0-9@*#])", text)
        if m:
            value = self.var(m.group(1), line)
            return str(len(value)) if self.m.clean(value) else self.unknown(whole)
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!])(.*)", text, re.S)
        if not m:
            return self.unknown(whole)
        name, op = m.group(1), m.group(2)
        if not op:
            return self.var(name, line)
        dm = re.fullmatch(r"(:?)([-=?+])(.*)", op, re.S)
        if dm:
            return self.param_default(name, dm.group(1) == ":", dm.group(2), dm.group(3), whole, line, col)
        value = self.var(name, line)
        refs = self.m.any_ref_re.findall(value)
        cm = re.fullmatch(r"(##|#|%%|%)(.*)", op, re.S)
        sm = re.fullmatch(r"(//|/)([^/]*)(?:/(.*))?", op, re.S)
        om = re.fullmatch(r":(-?[0-9]+)(?::([0-9]+))?", op)
        if (cm or sm or om) and len(refs) == 1 and self.m.any_ref_re.fullmatch(value):
            # ${OUT##* }, ${OUT//[!0-9]/}, ${OUT:20}: cutting sbatch's output down to the job id
            return self.m.job(refs[0][0] or refs[0][1])
        if not self.m.clean(value):
            return self.unknown(whole)
        if cm:
            return _trim(value, self.expand_text(cm.group(2), line, col), cm.group(1))
        if sm:
            rx = _glob_re(self.expand_text(sm.group(2), line, col))
            return rx.sub((sm.group(3) or "").replace("\\", "\\\\"), value, count=0 if sm.group(1) == "//" else 1)
        if om:
            start = int(om.group(1))
            return value[start : start + int(om.group(2))] if om.group(2) else value[start:]
        case = {"^^": value.upper(), ",,": value.lower(), "^": value[:1].upper() + value[1:]}
        case[","] = value[:1].lower() + value[1:]
        return case.get(op, self.unknown(whole))

    def param_default(self, name: str, colon: bool, kind: str, word: str, whole: str, line: int, col: int) -> str:
        """`${X:-default}`, `${X-d}`, `${X:=d}`, `${X:+alt}`, `${X:?msg}`."""
        positional = name.isdigit() or name in ("@", "*")
        if positional and self.positional:
            args = self.positional[-1]
            is_set = name in ("@", "*") and bool(args) or name.isdigit() and 0 < int(name) <= len(args)
        else:
            is_set = name in self.vars or name in self.arrays
        if name in self.unknown_vars:
            return self.unknown(whole)
        if not is_set and (positional or name not in self.vars):
            # not set in the chain: a script argument or the user's environment, which may or may not have had it;
            # take what bash takes when it is unset, and say so
            if kind in "-=+" and (line, name) not in self.defaulted and not (positional and self.positional):
                self.defaulted.add((line, name))
                what = "the chain's own argument" if positional else "not set in the chain (the environment?)"
                gives = self.show(self.expand_text(word, line, col)) if kind != "+" else ""
                self.warn(
                    f"${name} is {what}; assumed it is unset, so ${{{name}{':' if colon else ''}{kind}...}} gives "
                    f"{gives!r}",
                    line,
                    col,
                    "check that this is what you ran with",
                )
        value = self.var(name, line) if is_set else ""
        present = is_set and not (colon and value == "")
        if kind == "+":
            return self.expand_text(word, line, col) if present else ""
        if kind in "-=":
            if present:
                return value
            out = self.expand_text(word, line, col)
            if kind == "=" and not positional:
                self.vars[name] = out
            return out
        return value if present else self.unknown(whole)

    def expand_text(self, text: str, line: int, col: int) -> str:
        """A piece of source (a `${X:-default}` default, a pattern) expanded as one field."""
        try:
            cmds = lex_commands('"' + text.replace('"', '\\"') + '"', line)
        except BashSyntaxError:
            return text
        if len(cmds) != 1 or len(cmds[0].words) != 1:
            return text
        return self.scalar(cmds[0].words[0])

    def part_value(self, p: Part, line: int, col: int) -> str | list[str]:
        if p.kind == "lit":
            return p.text
        if p.kind == "var":
            return self.var(p.text, line)
        if p.kind == "param":
            return self.param(p.text, line, col)
        if p.kind == "arith":
            n = self.arith(p.text, line)
            return str(n) if n is not None else self.unknown("$((" + p.text + "))")
        return self.substitute(p.text, line)

    def scalar(self, w: Word) -> str:
        """A word expanded without word splitting (assignments, [[ ]] operands, quoted words)."""
        out = []
        for p in w.parts:
            v = self.part_value(p, w.line, w.col)
            out.append(" ".join(v) if isinstance(v, list) else v)
        return "".join(out)

    def fields(self, w: Word) -> list[str]:
        """A word expanded as bash expands a command's argument: brace expansion on unquoted text, then word
        splitting of unquoted expansions ("$@" and "${arr[@]}" give one field per element)."""
        out: list[str] = []
        for variant in _brace_variants(w):
            fields: list[str] = []
            cur: str | None = None
            for p in variant:
                v = self.part_value(p, w.line, w.col)
                if p.kind == "var" and p.text == "@" and p.quoted and self.positional:
                    v = list(self.positional[-1])
                if isinstance(v, list) and p.quoted:
                    for k, item in enumerate(v):
                        if k:
                            fields.append(cur or "")
                            cur = None
                        cur = (cur or "") + item
                    continue
                if isinstance(v, list):
                    v = " ".join(v)
                if p.kind == "lit" or p.quoted:
                    cur = (cur or "") + v
                    continue
                pieces = v.split()
                if v[:1].isspace() and cur is not None:
                    fields.append(cur)
                    cur = None
                for k, piece in enumerate(pieces):
                    if k and cur is not None:
                        fields.append(cur)
                        cur = None
                    cur = (cur or "") + piece
                if v[-1:].isspace() and pieces and cur is not None:
                    fields.append(cur)
                    cur = None
            if cur is not None:
                fields.append(cur)
            out.extend(fields)
        return out

    def substitute(self, inner: str, line: int) -> str:
        """`$(...)`: run the inner commands and take what they print (a job id for sbatch, sbatch's whole message
        without --parsable). A command whose output cannot be known here is an unknown value."""
        try:
            nodes = parse_script(inner, line)
        except BashSyntaxError as ex:
            self.warn(f"cannot read $({inner.strip()}): {ex.message}", line)
            return self.unknown(f"$({inner.strip()})")
        # a subshell: its variables and directory do not leak out (the jobs it submits do)
        saved = (dict(self.vars), {k: list(v) for k, v in self.arrays.items()}, self.cwd, dict(self.unknown_vars))
        self.capture.append([])
        try:
            self.run_nodes(nodes)
        except (_Return, _Stop, _Break, _Continue):
            pass
        finally:
            out = "".join(self.capture.pop())
            self.vars, self.arrays, self.cwd, self.unknown_vars = saved
        return out.rstrip("\n")

    # --- arithmetic and tests

    def arith(self, expr: str, line: int) -> int | None:
        try:
            return _Arith(expr, self, line).run()
        except (ValueError, ZeroDivisionError, RecursionError):
            return None

    def int_var(self, name: str, line: int) -> int | None:
        """A variable's value in arithmetic; None when it is not known here (never assigned in the chain, or assigned
        where the chain could not be followed)."""
        if not (name in self.vars or name.isdigit() or name == "#"):
            return None
        value = self.var(name, line).strip()
        if not value:
            return 0
        if re.fullmatch(r"[+-]?[0-9]+", value):
            return int(value)
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            return self.int_var(value, line)
        return None

    def test(self, args: list[str], double: bool) -> bool | None:
        """`[ ... ]` / `[[ ... ]]` / `test ...` over known values; None when it depends on something unknown here
        (a file, a command's output)."""
        try:
            return _Test(args, self, double).run()
        except ValueError:
            return None

    # --- running

    def run(self, text: str) -> None:
        try:
            nodes = parse_script(text)
        except BashSyntaxError as ex:
            raise InputError(Problem(f"cannot read as bash: {ex.message}", self.path, ex.line, 1)) from None
        try:
            self.run_nodes(nodes)
        except _Stop:
            pass
        except (_Return, _Break, _Continue):
            pass

    def run_nodes(self, nodes: list[Node]) -> None:
        for node in nodes:
            sep = node.sep_before
            if sep == "&&" and self.status is not True or sep == "||" and self.status is not False:
                if self.status is None and _loose_break([node]):
                    self.uncertain_exit = True
                if self.status is None and _matters(node):
                    when = "succeeds" if sep == "&&" else "fails"
                    if not any(_calls_sbatch(c) for c in _commands([node])):
                        self.warn(
                            f"{_kind(node)} after `{sep}` not translated: it runs only if the command before {when}, "
                            "which cannot be known here",
                            node.line,
                            1,
                            "port the condition by hand",
                        )
                    self.opaque([node], f"after `{sep}` (it runs only if the command before {when}, not known here)")
                continue
            self.node(node)

    def node(self, node: Node) -> None:
        if isinstance(node, Simple):
            self.simple(node)
        elif isinstance(node, Group):
            if node.subshell:
                saved = (dict(self.vars), {k: list(v) for k, v in self.arrays.items()}, self.cwd)
                try:
                    self.run_nodes(node.body)
                except _Stop:
                    pass
                self.vars, self.arrays, self.cwd = saved
            else:
                self.run_nodes(node.body)
        elif isinstance(node, If):
            self.if_(node)
        elif isinstance(node, ForIn):
            self.for_in(node)
        elif isinstance(node, ForArith):
            self.for_arith(node)
        elif isinstance(node, While):
            self.while_(node)
        elif node.kind == "function" and node.name:
            self.functions[node.name] = node
            self.status = True
        else:
            self.warn(f"bash `{node.kind}` block not translated", node.line, 1, "port it by hand")
            self.opaque([node], f"inside the `{node.kind}` at line {node.line}", warn_sbatch=True)

    def if_(self, node: If) -> None:
        for cond, body in node.branches:
            self.run_nodes(cond)
            if self.status is None:
                if _matters(node):
                    self.warn(
                        "`if` not translated: its condition cannot be known here",
                        node.line,
                        1,
                        "port the branch you need by hand",
                    )
                self.opaque([node], f"inside the `if` at line {node.line}")
                self.status = None
                return
            if self.status:
                self.run_nodes(body)
                return
        if node.orelse is not None:
            self.run_nodes(node.orelse)
        else:
            self.status = True

    def loop(self, body: list[Node], line: int) -> bool:
        """One iteration; False to stop (break)."""
        try:
            self.run_nodes(body)
        except _Break as b:
            if b.levels > 1:
                raise _Break(b.levels - 1) from None
            return False
        except _Continue as c:
            if c.levels > 1:
                raise _Continue(c.levels - 1) from None
        return True

    def snapshot(self) -> tuple[Any, ...]:
        return (
            len(self.allocs), len(self.warnings), dict(self.vars), {k: list(v) for k, v in self.arrays.items()},
            set(self.used_names), dict(self.unknown_vars), self.cwd, self.status,
        )  # fmt: skip

    def restore(self, snap: tuple[Any, ...]) -> None:
        n_allocs, n_warnings, self.vars, self.arrays, used, self.unknown_vars, self.cwd, self.status = snap
        del self.allocs[n_allocs:]
        del self.warnings[n_warnings:]
        self.used_names.clear()
        self.used_names.update(used)

    def unrolled(self, node: ForIn | ForArith | While, iterations: Iterator[bool]) -> None:
        """Run a loop's iterations (`iterations` runs the condition/step, yields False to stop); if a `break` in it
        depends on something not known here, nothing of the loop is kept and it is reported instead."""
        snap = self.snapshot()
        outer, self.uncertain_exit = self.uncertain_exit, False
        self.loop_depth += 1
        try:
            for n, go_on in enumerate(iterations):
                if not go_on:
                    break
                if n >= MAX_ITERATIONS:
                    self.warn(f"loop stopped after {MAX_ITERATIONS} iterations", node.line)
                    break
                stop = not self.loop(node.body, node.line)
                if self.uncertain_exit:
                    self.restore(snap)
                    if _matters(node):
                        self.warn(
                            "loop not unrolled: a `break` in it depends on something that cannot be known here",
                            node.line,
                            1,
                            "list the iterations in the workflow (a task group, or one allocation each)",
                        )
                    self.uncertain_exit = False
                    self.opaque([node], f"inside the loop at line {node.line}")
                    self.status = None
                    return
                if stop:
                    break
            self.status = True
        finally:
            self.loop_depth -= 1
            self.uncertain_exit = outer

    def for_in(self, node: ForIn) -> None:
        if node.items is None:
            items: list[str] = list(self.positional[-1]) if self.positional else [self.unknown('"$@"')]
        else:
            items = [f for w in node.items for f in self.fields(w)]
        bad = [x for x in items if not self.is_known(x) or _has_glob(x)]
        if bad:
            if _matters(node):
                self.warn(
                    f"`for {node.var} in ...` not unrolled: the values ({self.show(bad[0])}) are not known here",
                    node.line,
                    1,
                    "list the values in the workflow (a task group, or one allocation each)",
                )
            self.opaque([node], f"inside the `for` loop at line {node.line}")
            self.unknown_vars[node.var] = f"the `for` loop at line {node.line}"
            self.vars.pop(node.var, None)
            return

        def iterations() -> Iterator[bool]:
            for item in items:
                self.vars[node.var] = item
                yield True

        self.unrolled(node, iterations())

    def for_arith(self, node: ForArith) -> None:
        if node.init and self.arith(node.init, node.line) is None:
            self.cannot_unroll(node, node.init)
            return
        failed: list[str] = []

        def iterations() -> Iterator[bool]:
            first = True
            while True:
                if not first and node.step and self.arith(node.step, node.line) is None:
                    failed.append(node.step)
                    return
                first = False
                ok = self.arith(node.cond, node.line) if node.cond else 1
                if ok is None:
                    failed.append(node.cond)
                    return
                yield bool(ok)

        snap = self.snapshot()
        self.unrolled(node, iterations())
        if failed:
            self.restore(snap)
            self.cannot_unroll(node, failed[0])

    def while_(self, node: While) -> None:
        failed: list[bool] = []

        def iterations() -> Iterator[bool]:
            while True:
                self.run_nodes(node.cond)
                if self.status is None:
                    failed.append(True)
                    return
                yield self.status != node.until

        snap = self.snapshot()
        self.unrolled(node, iterations())
        if failed:
            self.restore(snap)
            self.cannot_unroll(node, "its condition")

    def cannot_unroll(self, node: ForArith | While, what: str) -> None:
        kind = "for ((...))" if isinstance(node, ForArith) else ("until" if node.until else "while")
        if _matters(node):
            self.warn(
                f"`{kind}` loop not unrolled: {self.show(what)} cannot be evaluated here",
                node.line,
                1,
                "list the iterations in the workflow (a task group, or one allocation each)",
            )
        self.opaque([node], f"inside the `{kind}` loop at line {node.line}")
        self.status = None

    def opaque(self, nodes: list[Node], where: str, warn_sbatch: bool = True) -> None:
        """Nodes that are not run: each sbatch in them is a warning, each variable they set becomes unknown."""
        if _loose_break(nodes):
            self.uncertain_exit = True
        for cmd in _commands(nodes):
            for w in cmd.words:
                a = assignment(w) or indexed_assignment(w)
                if a is not None and a[0] not in self.unknown_vars:
                    self.vars.pop(a[0], None)
                    self.arrays.pop(a[0], None)
                    self.unknown_vars[a[0]] = where
            first = cmd.first()
            if first == "cd":
                self.cwd = None
            if warn_sbatch and _calls_sbatch(cmd):
                self.warn(
                    f"sbatch {where}: not translated",
                    cmd.line,
                    cmd.words[0].col if cmd.words else 1,
                    "add the allocation(s) to the workflow by hand",
                )

    # --- simple commands

    def simple(self, node: Simple) -> None:
        cmd = node.pipeline[0]
        words = list(cmd.words)
        prefix: list[tuple[str, str, Word]] = []
        while words:
            a = assignment(words[0])
            if a is None:
                break
            prefix.append(a)
            words = words[1:]
        if len(words) == 1 and not prefix and indexed_assignment(words[0]) is not None:
            target = indexed_assignment(words[0])
            assert target is not None
            self.assign_element(*target, cmd.line)
            return
        if not words:
            for name, op, value in prefix:
                self.assign(name, op, value, cmd.line)
            if len(node.pipeline) > 1:
                self.warn("pipe after an assignment not translated", cmd.line, cmd.words[0].col)
            return
        head = self.fields(words[0])
        first = os.path.basename(head[0]) if head else ""
        if first in ("command", "builtin", "exec") and len(words) > 1:
            words = words[1:]
            head = self.fields(words[0])
            first = os.path.basename(head[0]) if head else ""
        for stage in node.pipeline[1:]:
            if _calls_sbatch(stage):
                self.warn(
                    "sbatch reading its script from a pipe is not translated",
                    stage.line,
                    stage.words[0].col,
                    "save the script to a file and use script:",
                )
        if first == "sbatch":
            env = {name: self.scalar(value) for name, _, value in prefix}
            self.sbatch(node.pipeline, words, env)
            return
        if prefix:
            self.warn("environment prefix on a command not translated", cmd.line, cmd.words[0].col)
        if len(node.pipeline) > 1 and self.capture:
            # `$(echo $OUT | awk '{print $4}')`: what the first command prints, cut down to the job id
            self.capture.append([])
            try:
                self.command(first, words, cmd)
            finally:
                printed = "".join(self.capture.pop())
            refs = self.m.any_ref_re.findall(printed)
            stages = {os.path.basename(st.first() or "") for st in node.pipeline[1:]}
            if len(refs) == 1 and stages <= ID_FILTERS:
                self.capture[-1].append(self.m.job(refs[0][0] or refs[0][1]) + "\n")
            else:
                self.capture[-1].append(
                    self.unknown(
                        "$(" + " | ".join(self.show(self.scalar(st.words[0])) + " ..." for st in node.pipeline) + ")"
                    )
                )
            return
        self.command(first, words, cmd)

    def command(self, first: str, words: list[Word], cmd: Command) -> None:
        if first in self.functions:
            self.call(first, words, cmd)
        else:
            self.builtin(first, words, cmd)

    def builtin(self, first: str, words: list[Word], cmd: Command) -> None:
        line = cmd.line
        col = words[0].col
        if first in ("[", "[[", "test"):
            double = first == "[["
            # inside [[ ]] words are not split; `[` and `test` get ordinary command arguments
            args = [self.scalar(w) for w in words[1:]] if double else [f for w in words[1:] for f in self.fields(w)]
            if args and args[-1] in ("]", "]]"):
                args = args[:-1]
            self.status = self.test(args, double)
            return
        if words[0].parts[0].kind == "arith" and len(words) == 1:
            n = self.arith(words[0].parts[0].text, line)
            self.status = None if n is None else n != 0
            return
        if first == "let":
            for w in words[1:]:
                n = self.arith(self.scalar(w), line)
                if n is None:
                    self.status = None
                    return
                self.status = n != 0
            return
        if first in ("export", "local", "declare", "typeset", "readonly"):
            for w in words[1:]:
                lit = w.literal()
                if lit is not None and lit.startswith("-"):
                    continue
                a = assignment(w)
                if a is None:
                    continue
                if first == "export":
                    self.warn(
                        f"export {a[0]}=... not translated: jobs submitted after it inherit it",
                        line,
                        col,
                        f"add {a[0]} to the allocations' env: if they need it",
                    )
                self.assign(a[0], a[1], a[2], line)
            if first == "export" and not any(assignment(w) for w in words[1:]):
                names = " ".join(w.source() for w in words[1:] if not (w.literal() or "").startswith("-"))
                if names:
                    self.warn(
                        f"export {names} not translated: jobs submitted after it inherit it",
                        line,
                        col,
                        "add them to the allocations' env: if they need them",
                    )
            self.status = True
            return
        if first == "cd":
            args = [f for w in words[1:] for f in self.fields(w)]
            target = args[0] if args else os.path.expanduser("~")
            if self.cwd is None or not self.is_known(target) or target == "-" or not self.m.clean(target):
                self.cwd = None
                self.warn(
                    f"cd {self.show(target)}: the directory cannot be known here",
                    line,
                    col,
                    "relative script paths and the jobs' working directory after it may be wrong: check workdir:",
                )
            else:
                self.cwd = os.path.normpath(os.path.join(self.cwd, os.path.expanduser(target)))
            self.status = True
            return
        if first in ("echo", "printf"):
            args = [f for w in words[1:] for f in self.fields(w)]
            if self.capture:
                self.capture[-1].append(_echo(args) if first == "echo" else _printf(args))
            self.status = True
            return
        if first == "exit":
            if self.capture or self.positional:
                raise _Return()
            raise _Stop()
        if first == "return":
            raise _Return()
        if first in ("break", "continue") and self.loop_depth:
            args = [f for w in words[1:] for f in self.fields(w)]
            levels = int(args[0]) if args and args[0].isdigit() else 1
            raise _Break(levels) if first == "break" else _Continue(levels)
        if first in ("false",):
            self.status = False
            return
        if first == "seq" and self.capture:
            args = [f for w in words[1:] for f in self.fields(w)]
            out = _seq(args)
            if out is None:
                self.capture[-1].append(self.unknown("$(seq " + " ".join(args) + ")"))
            else:
                self.capture[-1].append("".join(f"{x}\n" for x in out))
            self.status = True
            return
        if self.capture and first in ("pwd", "dirname", "basename", "realpath", "readlink", "expr"):
            args = [f for w in words[1:] for f in self.fields(w)]
            printed = self.path_command(first, args)
            self.capture[-1].append(printed + "\n" if printed is not None else self.unknown(f"$({first} ...)"))
            self.status = True
            return
        if first in QUIET:
            self.status = True
            return
        if first in QUERIES:
            # what it prints, or whether it succeeds, is not known here
            if self.capture:
                self.capture[-1].append(self.unknown(f"$({first} ...)"))
            self.status = None
            return
        if first in ("source", "."):
            self.warn(f"`{first}` of another file not followed", line, col, "port what it does by hand")
            self.status = None
            return
        shown = " ".join(w.source() for w in words)[:60]  # as written: expanding again would run $(...) twice
        if self.capture:
            self.capture[-1].append(self.unknown(f"$({shown})"))
        else:
            self.warn(f"command not translated: {shown}", line, col, "do it yourself, or add it to setup:")
        self.status = None

    def path_command(self, first: str, args: list[str]) -> str | None:
        if any(not self.m.clean(a) for a in args):
            return None
        plain = [a for a in args if not a.startswith("-")]
        if first == "pwd":
            return self.cwd
        if first == "dirname" and plain:
            return os.path.dirname(plain[0]) or "."
        if first == "basename" and plain:
            name = os.path.basename(plain[0].rstrip("/"))
            return name[: -len(plain[1])] if len(plain) > 1 and name.endswith(plain[1]) else name
        if first in ("realpath", "readlink") and plain and self.cwd is not None:
            if first == "readlink" and "-f" not in args:
                return None
            return os.path.normpath(os.path.join(self.cwd, plain[0]))
        if first == "expr":
            n = self.arith(" ".join(args).replace("\\*", "*"), 0)
            return str(n) if n is not None else None
        return None

    def call(self, name: str, words: list[Word], cmd: Command) -> None:
        fn = self.functions[name]
        if len(self.positional) > 20:
            self.warn(f"function {name} calls itself too deeply; not followed", cmd.line)
            self.status = None
            return
        args = [f for w in words[1:] for f in self.fields(w)]
        self.positional.append(args)
        try:
            self.run_nodes(fn.body or [])
        except _Return:
            pass
        finally:
            self.positional.pop()

    def assign_element(self, name: str, index: str, op: str, value: Word, line: int) -> None:
        """`arr[i]=value`."""
        k = self.arith(self.expand_text(index, line, 1), line)
        if k is None or k < 0 or k > 100000:
            self.warn(f"{name}[{index}]=... not translated: the index cannot be known here", line)
            self.unknown_vars[name] = f"line {line}"
            self.arrays.pop(name, None)
            self.status = None
            return
        self.assigning.append(name)
        try:
            text = self.scalar(value)
        finally:
            self.assigning.pop()
        arr = self.arrays.setdefault(name, [self.vars.pop(name)] if name in self.vars else [])
        arr.extend([""] * (k + 1 - len(arr)))
        arr[k] = arr[k] + text if op == "+=" else text
        self.status = True

    def assign(self, name: str, op: str, value: Word, line: int) -> None:
        self.unknown_vars.pop(name, None)
        if value.array is not None:
            items = [f for w in value.array for f in self.fields(w)]
            self.arrays[name] = (self.arrays.get(name, []) if op == "+=" else []) + items
            self.vars.pop(name, None)
            self.status = True
            return
        self.assigning.append(name)
        try:
            text = self.scalar(value)
        finally:
            self.assigning.pop()
        if op == "+=" and name in self.arrays:
            self.arrays[name].append(text)
        else:
            self.vars[name] = (self.vars.get(name, "") + text) if op == "+=" else text
            self.arrays.pop(name, None)
        self.status = True

    # --- one sbatch call

    def sbatch(self, pipeline: list[Command], words: list[Word], env: dict[str, str]) -> None:
        cmd = pipeline[0]
        line = cmd.line
        filtered = False
        for stage in pipeline[1:]:
            s = os.path.basename(stage.first() or "")
            if s in ID_FILTERS:
                filtered = True
            else:
                self.warn(f"pipe into {s or 'a command'} after sbatch not translated", stage.line, stage.words[0].col)
        for r in cmd.redirects:
            if r.op in ("<<", "<<-", "<<<", "<"):
                self.warn(
                    "sbatch reading its script from stdin (a here-document or `<`) is not translated",
                    line,
                    words[0].col,
                    "save the script to a file and use script:",
                )
                self.status = None
                if self.capture:
                    self.capture[-1].append(self.unknown("$(sbatch ...)"))
                return
        tokens: list[Token] = []
        for w in words[1:]:
            for f in self.fields(w):
                tokens.append(Token(f, w.line, w.col))
        opts, operands, issues = parse_args(tokens)
        for iss in issues:
            self.warn(iss.message, iss.line, iss.col, iss.hint)
        wrap: str | None = None
        kept: dict[str, ParsedOption] = {}
        deps: list[ParsedOption] = []
        name = None
        parsable = False
        for o in opts:
            if o.name == "wrap":
                wrap = o.value
            elif o.name == "dependency":
                deps.append(o)
            elif o.name == "job-name":
                name = o.value
            elif o.name == "parsable":
                parsable = True
            elif o.name == "hold":
                self.warn("--hold dropped: slurmdag holds and releases the whole DAG itself", o.line, o.col)
            elif o.name == "kill-on-invalid-dep":
                self.warn("--kill-on-invalid-dep dropped: slurmdag sets it on every dependent job", o.line, o.col)
            elif o.name in CLIENT_ONLY:
                self.warn(f"--{o.name} only affects the sbatch command; dropped", o.line, o.col)
            else:
                key = o.name if o.known else f"?{o.name}"
                if key in kept:
                    self.warn(
                        f"--{o.name} given twice: sbatch uses the last one ({self.show(o.value or '')}), and so does "
                        "this port",
                        kept[key].line,
                        kept[key].col,
                    )
                    del kept[key]
                kept[key] = o
        script = written = None
        directives = None
        path_known = True
        if wrap is None:
            if not operands:
                self.warn("sbatch without a script (reads stdin) is not translated", line, words[0].col)
                self.status = None
                return
            raw = operands[0].text
            path_known = self.m.clean(raw) and self.cwd is not None
            if not path_known:
                self.warn(
                    f"script path {self.show(raw)} cannot be known here",
                    line,
                    operands[0].col,
                    "fix the script: path in the output",
                )
                raw = self.show(raw)
            if raw.startswith("~"):
                written = raw  # `validate` expands ~ as the shell did; keep the user's own spelling
            script = os.path.normpath(os.path.join(self.cwd or self.base, os.path.expanduser(raw)))
            if len(operands) > 1:
                self.warn(
                    "script arguments not translated: " + " ".join(self.show(t.text) for t in operands[1:]),
                    line,
                    operands[1].col,
                    "read them from env: or params: in the script instead",
                )
            try:
                if path_known:
                    directives = read_directives(self.read_text(script), script)
            except (OSError, UnicodeDecodeError) as ex:
                self.warn(
                    f"cannot read batch script {raw}: {getattr(ex, 'strerror', None) or ex}", line, operands[0].col
                )
            if directives is not None:
                self.warnings.extend(_script_warnings(directives))
                if name is None:
                    name = directives.job_name
        elif operands:
            self.warn("words after a --wrap call not translated", line, operands[0].col)
        if name is None and wrap is None and path_known:
            name = os.path.splitext(os.path.basename(script or ""))[0]
        if name is None:
            name = self.assigning[-1].lower() if self.assigning else "wrap"
        alloc = _Alloc(
            key=f"a{len(self.allocs)}",
            name="",
            line=line,
            script=script,
            script_written=written,
            wrap=wrap,
            options=list(kept.values()),
            directives=directives,
        )
        alloc.name = self.unique(self.show(name), line, words[0].col)
        if wrap is not None and not self.m.clean(wrap):
            self.warn(f"--wrap command {self.show(wrap)!r} uses values that cannot be known here", line, 1)
            alloc.wrap = self.show(wrap)
        for k, v in env.items():
            if self.m.clean(v):
                alloc.env[k] = v
            else:
                self.warn(f"{k}={self.show(v)} for this job cannot be known here; not translated", line, 1)
        if self.cwd is not None and self.cwd != self.base and "chdir" not in kept:
            alloc.workdir = os.path.relpath(self.cwd, self.base)
        if len(deps) > 1:
            for d in deps[:-1]:
                self.warn(
                    f"--dependency={self.show(d.value or '')} is replaced by the later --dependency, as sbatch does",
                    d.line,
                    d.col,
                )
        if deps:
            self.dependency(alloc, deps[-1])
        self.allocs.append(alloc)
        self.status = True
        if self.capture:
            out = self.m.job(alloc.key) if (parsable or filtered) else self.m.raw(alloc.key)
            self.capture[-1].append(out + "\n")

    def unique(self, name: str, line: int, col: int) -> str:
        """An allocation name the compiler accepts (NAME_RE, at most 64 characters), unique in the workflow; a name
        that had to change is a warning."""
        clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")
        clean = re.sub(r"^[^A-Za-z0-9]+", "", clean) or "job"
        if len(clean) > NAME_MAX:
            clean = clean[:NAME_MAX].rstrip("-_.")
        cand, k = clean, 2
        while cand in self.used_names:
            suffix = f"-{k}"
            cand = clean[: NAME_MAX - len(suffix)].rstrip("-_.") + suffix
            k += 1
        self.used_names.add(cand)
        if clean != name:
            why = "at most 64 characters" if len(name) > NAME_MAX else "letters, digits, '-', '_' and '.' only"
            self.warn(
                f"job name {name!r} written as allocation name {cand!r} ({why})",
                line,
                col,
                "slurmdag names the Slurm job sd-<dag>-<allocation>",
            )
        assert NAME_RE.match(cand), cand
        return cand

    def dependency(self, alloc: _Alloc, opt: ParsedOption) -> None:
        """sbatch's --dependency expression, read as slurmctld 22.05 reads it (measured on the test cluster)."""
        value = opt.value or ""
        at = (opt.line, opt.col)
        if value == "":
            return  # sbatch treats an empty dependency as none
        has_and, has_or = "," in value, "?" in value
        if has_and and has_or:
            self.warn(
                "--dependency mixes ',' and '?': Slurm reads the whole expression as OR, and so does this port",
                *at,
                "check that OR is what you meant",
            )
        target = alloc.deps_any if has_or else alloc.deps_all
        terms = re.split(r"([,?])", value)
        refused = "sbatch refuses it ('Job dependency problem'), so this sbatch call failed in the original chain"
        for k in range(0, len(terms), 2):
            term = terms[k]
            rest = "".join(terms[k:])
            if term == "":
                self.warn(f"--dependency={self.show(value)} has an empty term: {refused}; not translated", *at)
                continue
            if term.lower().startswith("singleton"):
                self.warn(
                    "dependency singleton has no slurmdag equivalent; not translated",
                    *at,
                    "chain the allocations that share the name with depends_on",
                )
                continue
            if ":" not in term:
                if self.m.any_ref_re.fullmatch(term) or term.isdigit():
                    if ":" in rest:
                        self.warn(
                            f"dependency term {self.show(term)!r} has no type and a typed term follows it: {refused}",
                            *at,
                        )
                    else:
                        self.warn(
                            f"dependency term {self.show(term)!r} has no type: sbatch reads a bare job id as afterany "
                            "(run after it ends, whatever its outcome); imported the same way",
                            *at,
                            "write afterok: before it if you meant success",
                        )
                    self.refs(alloc, target, term, "afterany", opt)
                    continue
                if term.lower() in CONDITION or term.lower() in NO_EQUIVALENT:
                    self.warn(f"dependency {self.show(term)} names no job: {refused}; not translated", *at)
                    continue
                self.warn(
                    f"dependency {self.show(term)!r} cannot be read (a value that is not known here?); not translated",
                    *at,
                )
                continue
            kind, _, ids = term.partition(":")
            kind = kind.lower()
            if kind in NO_EQUIVALENT:
                self.warn(
                    f"dependency type {kind!r} has no slurmdag equivalent; not translated",
                    *at,
                    "after/afterburstbuffer/expand: port it by hand",
                )
                continue
            if kind not in CONDITION:
                self.warn(f"dependency type {self.show(kind)!r} is not one sbatch knows: {refused}", *at)
                continue
            if ids == "" or ids.endswith(":"):
                self.warn(f"dependency {self.show(term)} names no job after a ':': {refused}; not translated", *at)
            for ref in ids.split(":"):
                if ref:
                    self.refs(alloc, target, ref, kind, opt)

    def refs(self, alloc: _Alloc, target: list[tuple[str, str]], ref: str, kind: str, opt: ParsedOption) -> None:
        at = (opt.line, opt.col)
        plain, _, delay = ref.partition("+")
        if delay:
            self.warn(f"dependency delay +{self.show(delay)} not translated (the edge is kept without it)", *at)
        m = re.fullmatch(f"(?:{self.m.any_ref_re.pattern})(_[0-9]+|_\\*)?", plain)
        if m:
            key = m.group(1) or m.group(2)
            if m.group(2):
                parent = next(a.name for a in self.allocs if a.key == key)
                self.warn(
                    f"the job id of {parent} is taken from sbatch's whole message ('Submitted batch job N'), so sbatch "
                    "refused this --dependency in the original chain; imported as the dependency it meant",
                    *at,
                    "the original needed --parsable (or a cut/awk) where the id was taken",
                )
            if m.group(3) and m.group(3) != "_*":
                self.warn(f"dependency on one array task ({self.show(ref)}) widened to the whole array", *at)
            target.append((key, CONDITION[kind]))
        elif re.fullmatch(r"[0-9]+(_[0-9]+|_\*)?", plain):
            self.warn(
                f"dependency on existing job id {plain} not translated",
                *at,
                "a workflow can only depend on its own allocations",
            )
        else:
            self.warn(
                f"dependency on {self.show(plain)} could not be resolved to an sbatch call of this file; "
                "not translated",
                *at,
            )

    # --- output

    def allocations(self, rel_to: str) -> list[dict[str, Any]]:
        by_key = {a.key: a for a in self.allocs}
        out = []
        for a in self.allocs:
            entry: dict[str, Any] = {"name": a.name}
            if a.script is not None:
                entry["script"] = a.script_written or os.path.relpath(a.script, rel_to)
            else:
                entry["entrypoint"] = self.value(a.wrap or "", a, "--wrap")
            raw: list[str] = []
            array = None
            for o in a.options:
                value = self.value(o.value, a, f"--{o.name}") if o.value is not None else None
                if o.name == "array":
                    array = value
                    continue
                key = KEY_FOR_OPTION.get(o.name)
                if key and value is not None:
                    entry[key] = _typed(key, value)
                elif o.name == "exclusive" and value is None:
                    entry["exclusive"] = True
                else:
                    raw.append(f"--{o.name}" if value is None else f"--{o.name}={value}")
                if o.name in ("output", "error") and value and "%x" in value:
                    self.warn_x(o.name, value, a, o.line, o.col)
            if a.directives is not None:
                for d in a.directives.directives:
                    if (
                        d.name in ("output", "error")
                        and d.value
                        and "%x" in d.value
                        and d.name not in {o.name for o in a.options}
                    ):
                        self.warn_x(d.name, d.value, a, d.line, d.col, a.directives.path)
                if array is None:
                    array = a.directives.array
            if a.workdir is not None and "workdir" not in entry:
                entry["workdir"] = a.workdir
            if array is not None:
                entry["array"] = array
            if raw:
                entry["sbatch"] = raw
            if a.env:
                entry["env"] = dict(a.env)
            deps = _edges(a.deps_all, by_key)
            if deps:
                entry["depends_on"] = deps
            anys = _edges(a.deps_any, by_key)
            if anys:
                entry["depends_on_any"] = anys
            out.append(entry)
        return out

    def value(self, text: str | None, a: _Alloc, what: str) -> str:
        """A value for the YAML: markers resolved; a value that is not fully known is a warning."""
        text = text or ""
        if not self.m.clean(text):
            opt = next((o for o in a.options if f"--{o.name}" == what), None)
            line, col = (opt.line, opt.col) if opt else (a.line, 1)
            if self.m.any_ref_re.search(text):
                self.warn(
                    f"{what}={self.show(text)} uses a job id, which is only known once submitted; written as shown",
                    line,
                    col,
                    "use slurmdag's own names instead (SLURMDAG_ALLOCATION, SLURM_JOB_ID in the job)",
                )
            else:
                self.warn(
                    f"{what}={self.show(text)} uses a value that cannot be known here; written as in the chain",
                    line,
                    col,
                    "replace it with the value you ran with",
                )
        return self.show(text)

    def check_clean(self, entries: list[dict[str, Any]]) -> None:
        """Nothing the importer uses internally (its marker characters) may reach the YAML or a message."""
        text = yaml.safe_dump(entries, allow_unicode=True) + "".join(str(w) for w in self.warnings)
        leaked = sorted({f"U+{ord(c):04X}" for c in text if c in self.m.all})
        if leaked:
            raise InternalError(f"slurmdag import leaked its private marker characters {', '.join(leaked)}")

    def warn_x(self, name: str, value: str, a: _Alloc, line: int, col: int, file: str | None = None) -> None:
        problem = Problem(
            f"--{name}={value}: %x is the job name, which slurmdag sets to sd-<dag>-{a.name}",
            file or self.path,
            line,
            col,
            "the log file names change; write the name you want instead of %x",
        )
        self.warnings.append(problem)


def _script_warnings(d: ScriptDirectives) -> list[Problem]:
    """A followed batch script's problems and notes, except what the import maps itself (--job-name, --array)."""
    mapped = {(o.line, o.col) for o in d.directives if o.name in ("job-name", "array")}
    return list(d.problems) + [n for n in d.notes if (n.line, n.col) not in mapped]


# ---------------------------------------------------------------- helpers


def _commands(nodes: list[Node]) -> Iterator[Command]:
    for n in nodes:
        if isinstance(n, Simple):
            yield from n.pipeline
        elif isinstance(n, (ForIn, ForArith)):
            yield from _commands(n.body)
        elif isinstance(n, While):
            yield from _commands(n.cond)
            yield from _commands(n.body)
        elif isinstance(n, If):
            for c, b in n.branches:
                yield from _commands(c)
                yield from _commands(b)
            if n.orelse:
                yield from _commands(n.orelse)
        elif isinstance(n, Group):
            yield from _commands(n.body)
        else:
            yield from n.commands


def _calls_sbatch(cmd: Command) -> bool:
    for w in cmd.words:
        lit = w.literal()
        if lit is not None and os.path.basename(lit) == "sbatch":
            return True
        if any(p.kind == "cmd" and re.search(r"(^|[\s;&|(/])sbatch(\s|$)", p.text) for p in w.parts):
            return True
    return False


def _matters(node: Node) -> bool:
    """Whether skipping this node loses something (an sbatch, a variable, a directory); error handling that only
    prints and exits does not."""
    for cmd in _commands([node]):
        if _calls_sbatch(cmd):
            return True
        first = cmd.first()
        if first in ("cd", "export", "source", ".") or any(assignment(w) or indexed_assignment(w) for w in cmd.words):
            return True
        if first is not None and first not in HARMLESS and first not in ("exit", "return", "[", "[[", "test"):
            if first not in ("fi", "done", "esac", "}", ")", "then", "else", "do"):
                return True
    return False


def _loose_break(nodes: list[Node]) -> bool:
    """A `break`/`continue` among these nodes that belongs to the loop around them (not to a loop inside)."""
    for n in nodes:
        if isinstance(n, Simple) and any(c.first() in ("break", "continue") for c in n.pipeline):
            return True
        if isinstance(n, If) and (
            any(_loose_break(c) or _loose_break(b) for c, b in n.branches) or _loose_break(n.orelse or [])
        ):
            return True
        if isinstance(n, Group) and _loose_break(n.body):
            return True
    return False


def _kind(node: Node) -> str:
    if isinstance(node, Simple):
        return "command"
    return {ForIn: "`for` loop", ForArith: "`for` loop", While: "loop", If: "`if`", Group: "group"}.get(
        type(node), "block"
    )


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _echo(args: list[str]) -> str:
    newline = True
    while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
        newline = newline and "n" not in args[0]
        args = args[1:]
    return " ".join(args) + ("\n" if newline else "")


def _printf(args: list[str]) -> str:
    if not args:
        return ""
    fmt, rest = args[0], list(args[1:])
    out = []

    def repl(m: re.Match[str]) -> str:
        spec = m.group(0)
        if spec == "%%":
            return "%"
        arg = rest.pop(0) if rest else ""
        try:
            if spec[-1] in "di":
                return (spec[:-1] + "d") % int(arg or 0)
            return spec % arg
        except (ValueError, TypeError):
            return arg

    spec = re.compile(r"%%|%[-0 +#]*[0-9]*(?:\.[0-9]+)?[sdi]")
    while True:
        out.append(spec.sub(repl, fmt).replace("\\n", "\n").replace("\\t", "\t"))
        if not rest or not any(m.group(0) != "%%" for m in spec.finditer(fmt)):
            break
    return "".join(out)


def _seq(args: list[str]) -> list[str] | None:
    plain = [a for a in args if not a.startswith("-") or re.fullmatch(r"-[0-9]+", a)]
    if len(plain) != len(args) or not 1 <= len(plain) <= 3 or not all(re.fullmatch(r"-?[0-9]+", a) for a in plain):
        return None
    n = [int(a) for a in plain]
    first, step, last = (1, 1, n[0]) if len(n) == 1 else ((n[0], 1, n[1]) if len(n) == 2 else (n[0], n[1], n[2]))
    if step == 0 or abs(last - first) // abs(step) > 100000:
        return None
    return [str(x) for x in range(first, last + (1 if step > 0 else -1), step)]


def _glob_re(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern).removesuffix("\\Z").removeprefix("(?s:").removesuffix(")"), re.S)


def _trim(value: str, pattern: str, how: str) -> str:
    rx = re.compile(fnmatch.translate(pattern), re.S)
    ends = range(len(value) + 1)
    if how in ("#", "##"):
        order = ends if how == "#" else reversed(ends)
        for k in order:
            if rx.match(value[:k]):
                return value[k:]
        return value
    starts = reversed(ends) if how == "%" else ends
    for k in starts:
        if rx.match(value[k:]):
            return value[:k]
    return value


def _brace_variants(w: Word) -> list[list[Part]]:
    """Brace expansion of a word's unquoted literal text: `{1..3}`, `{01..10}`, `{a..c}`, `{1..9..2}`, `{a,b}`."""
    if not any(p.kind == "lit" and not p.quoted and "{" in p.text and "}" in p.text for p in w.parts):
        return [w.parts]
    # expand over a template where every other part is one placeholder character
    holders: dict[str, Part] = {}
    template = []
    for k, p in enumerate(w.parts):
        if p.kind == "lit" and not p.quoted:
            template.append(p.text)
        else:
            ch = chr(0xF0000 + k)
            holders[ch] = p
            template.append(ch)
    out = []
    for text in _brace_expand("".join(template)):
        parts: list[Part] = []
        buf = ""
        for ch in text:
            if ch in holders:
                if buf:
                    parts.append(Part("lit", buf))
                    buf = ""
                parts.append(holders[ch])
            else:
                buf += ch
        if buf:
            parts.append(Part("lit", buf))
        out.append(parts)
    return out


def _brace_expand(text: str) -> list[str]:
    depth = 0
    start = -1
    for i, c in enumerate(text):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = text[start + 1 : i]
                pre, post = text[:start], text[i + 1 :]
                items = _brace_items(inner)
                if items is None:
                    return [pre + "{" + x for x in _brace_expand(text[start + 1 :])]
                return [pre + item + rest for item in items for rest in _brace_expand(post)]
    return [text]


def _brace_items(inner: str) -> list[str] | None:
    m = re.fullmatch(r"(-?[0-9]+)\.\.(-?[0-9]+)(?:\.\.(-?[0-9]+))?", inner)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        step = abs(int(m.group(3))) if m.group(3) else 1
        if step == 0 or abs(b - a) // step > 100000:
            return None
        width = max(len(m.group(1)), len(m.group(2))) if m.group(1).lstrip("-").startswith("0") else 0
        rng = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [str(x).zfill(width) if width else str(x) for x in rng]
    m = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?[0-9]+))?", inner)
    if m:
        a, b = ord(m.group(1)), ord(m.group(2))
        step = abs(int(m.group(3))) if m.group(3) else 1
        rng = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [chr(x) for x in rng]
    parts: list[str] = []
    depth = 0
    buf = ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(buf)
            buf = ""
            continue
        depth += (c == "{") - (c == "}")
        buf += c
    parts.append(buf)
    if len(parts) < 2:
        return None
    return [x for p in parts for x in _brace_expand(p)]


class _Arith:
    """Bash integer arithmetic (`$((...))`, `((...))`, `let`, `for ((...))`) over the chain's known variables."""

    TOKEN = re.compile(
        r"\s*(0[xX][0-9a-fA-F]+|[0-9]+|[A-Za-z_][A-Za-z0-9_]*|\$\{?[A-Za-z_0-9@#]+\}?|\*\*=?|\+\+|--|<<=?|>>=?|"
        r"&&|\|\||[-+*/%<>=!&|^]=|[-+*/%<>=!&|^~?:(),])"
    )

    def __init__(self, expr: str, chain: _Chain, line: int):
        self.chain = chain
        self.line = line
        self.toks: list[str] = []
        pos = 0
        expr = expr.strip()
        while pos < len(expr):
            m = self.TOKEN.match(expr, pos)
            if not m or m.end() == pos:
                raise ValueError(expr)
            self.toks.append(m.group(1))
            pos = m.end()
            while pos < len(expr) and expr[pos].isspace():
                pos += 1
        self.k = 0

    def run(self) -> int:
        value = self.comma()
        if self.k != len(self.toks):
            raise ValueError("trailing")
        return value

    def peek(self) -> str | None:
        return self.toks[self.k] if self.k < len(self.toks) else None

    def take(self) -> str:
        t = self.peek()
        if t is None:
            raise ValueError("end")
        self.k += 1
        return t

    def comma(self) -> int:
        v = self.assign()
        while self.peek() == ",":
            self.take()
            v = self.assign()
        return v

    def assign(self) -> int:
        t = self.peek()
        nxt = self.toks[self.k + 1] if self.k + 1 < len(self.toks) else None
        if (
            t
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t)
            and nxt in ("=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^=", "**=")
        ):
            self.k += 2
            value = self.assign()
            if nxt != "=":
                value = self.binop(nxt[:-1], self.get(t), value)
            self.set(t, value)
            return value
        return self.ternary()

    def ternary(self) -> int:
        c = self.binary(0)
        if self.peek() == "?":
            self.take()
            a = self.assign()
            if self.take() != ":":
                raise ValueError(":")
            b = self.assign()
            return a if c else b
        return c

    LEVELS = (("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", "<=", ">", ">="), ("<<", ">>"),
              ("+", "-"), ("*", "/", "%"))  # fmt: skip

    def binary(self, level: int) -> int:
        if level == len(self.LEVELS):
            return self.power()
        v = self.binary(level + 1)
        while self.peek() in self.LEVELS[level]:
            op = self.take()
            v = self.binop(op, v, self.binary(level + 1))
        return v

    def power(self) -> int:
        v = self.unary()
        if self.peek() == "**":
            self.take()
            e = self.power()
            if e < 0 or e > 64:
                raise ValueError("exponent")
            v = v**e
        return v

    def unary(self) -> int:
        t = self.peek()
        if t in ("-", "+", "!", "~"):
            self.take()
            v = self.unary()
            return {"-": -v, "+": v, "!": int(not v), "~": ~v}[t]
        if t in ("++", "--"):
            self.take()
            name = self.take()
            v = self.get(name) + (1 if t == "++" else -1)
            self.set(name, v)
            return v
        return self.postfix()

    def postfix(self) -> int:
        t = self.take()
        if t == "(":
            v = self.comma()
            if self.take() != ")":
                raise ValueError(")")
            return v
        if re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]+", t):
            return int(t, 0) if not (t.startswith("0") and len(t) > 1 and t[1] not in "xX") else int(t, 8)
        name = t.lstrip("${").rstrip("}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+|#", name):
            raise ValueError(t)
        if self.peek() in ("++", "--"):
            op = self.take()
            v = self.get(name)
            self.set(name, v + (1 if op == "++" else -1))
            return v
        return self.get(name)

    def get(self, name: str) -> int:
        v = self.chain.int_var(name, self.line)
        if v is None:
            raise ValueError(name)
        return v

    def set(self, name: str, value: int) -> None:
        self.chain.vars[name] = str(value)
        self.chain.unknown_vars.pop(name, None)

    @staticmethod
    def binop(op: str, a: int, b: int) -> int:
        if op in ("/", "%"):
            if b == 0:
                raise ZeroDivisionError
            q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
            return q if op == "/" else a - q * b
        return {
            "+": a + b, "-": a - b, "*": a * b, "**": a**b if 0 <= b <= 64 else 0, "<<": a << b if 0 <= b < 64 else 0,
            ">>": a >> b if 0 <= b < 64 else 0, "&": a & b, "|": a | b, "^": a ^ b, "==": int(a == b),
            "!=": int(a != b), "<": int(a < b), "<=": int(a <= b), ">": int(a > b), ">=": int(a >= b),
            "&&": int(bool(a and b)), "||": int(bool(a or b)),
        }[op]  # fmt: skip


class _Test:
    """`test` / `[` / `[[`: string and integer comparisons, -z/-n, !, -a/-o/&&/||, ( ). File tests are unknown."""

    def __init__(self, args: list[str], chain: _Chain, double: bool):
        self.args = args
        self.k = 0
        self.chain = chain
        self.double = double

    def run(self) -> bool:
        if not self.args:
            return False
        v = self.or_()
        if self.k != len(self.args):
            raise ValueError("trailing")
        return v

    def peek(self) -> str | None:
        return self.args[self.k] if self.k < len(self.args) else None

    def or_(self) -> bool:
        v = self.and_()
        while self.peek() in (("||",) if self.double else ("-o",)):
            self.k += 1
            r = self.and_()
            v = v or r
        return v

    def and_(self) -> bool:
        v = self.not_()
        while self.peek() in (("&&",) if self.double else ("-a",)):
            self.k += 1
            r = self.not_()
            v = v and r
        return v

    def not_(self) -> bool:
        if self.peek() == "!":
            self.k += 1
            return not self.not_()
        if self.peek() == "(":
            self.k += 1
            v = self.or_()
            if self.peek() != ")":
                raise ValueError(")")
            self.k += 1
            return v
        return self.primary()

    def known(self, s: str) -> str:
        if not self.chain.m.clean(s):
            if self.chain.m.any_ref_re.fullmatch(s):
                return "1"  # a job id: a non-empty number
            raise ValueError("unknown")
        return s

    def primary(self) -> bool:
        a = self.args[self.k :]
        if len(a) >= 3 and a[1] in ("=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "=~"):
            left, op, right = a[0], a[1], a[2]
            self.k += 3
            if op.startswith("-"):
                x, y = self.number(left), self.number(right)
                return {"-eq": x == y, "-ne": x != y, "-lt": x < y, "-le": x <= y, "-gt": x > y, "-ge": x >= y}[op]
            if op == "=~":
                raise ValueError("regex")
            if op in ("=", "==", "!="):
                if not self.chain.m.clean(left) or not self.chain.m.clean(right):
                    if left == right:
                        return op != "!="
                    raise ValueError("unknown")
                same = fnmatch.fnmatchcase(left, right) if self.double else left == right
                return same if op != "!=" else not same
            sx, sy = self.known(left), self.known(right)
            return sx < sy if op == "<" else sx > sy
        if len(a) >= 2 and a[0] in ("-z", "-n"):
            self.k += 2
            s = a[1]
            empty = s == "" if self.chain.m.clean(s) or self.chain.m.any_ref_re.search(s) else None
            if empty is None:
                raise ValueError("unknown")
            return empty if a[0] == "-z" else not empty
        if len(a) >= 2 and re.fullmatch(r"-[a-zA-Z]", a[0]):
            raise ValueError("file test")
        self.k += 1
        return self.known(a[0]) != ""

    def number(self, s: str) -> int:
        s = self.known(s).strip()
        if re.fullmatch(r"[+-]?[0-9]+", s):
            return int(s)
        if self.double:
            v = self.chain.arith(s, 0)
            if v is not None:
                return v
        raise ValueError("not a number")


def _edges(deps: list[tuple[str, str]], by_key: dict[str, _Alloc]) -> list[Any]:
    seen: dict[tuple[str, str], None] = {}
    for key, cond in deps:
        seen.setdefault((by_key[key].name, cond), None)
    out: list[Any] = []
    for name, cond in seen:
        out.append(name if cond == "success" else {name: cond})
    return out


def _typed(key: str, value: str) -> Any:
    if key in INT_KEYS and value.isdigit():
        return int(value)
    if key == "walltime":
        return slurm_time_to_walltime(value)
    return value


def slurm_time_to_walltime(value: str) -> Any:
    """Slurm's --time forms (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) → minutes (int) or "[D-]HH:MM:SS"."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not m:
        return value  # UNLIMITED and friends: left as written for the user to judge
    d, a, b, c = m.groups()
    if d is None:
        if b is None:
            return int(a)  # minutes
        h, mi, s = (0, int(a), int(b)) if c is None else (int(a), int(b), int(c))
    else:
        h, mi, s = int(a), int(b or 0), int(c or 0)
    total = (int(d or 0) * 86400) + h * 3600 + mi * 60 + s
    days, rem = divmod(total, 86400)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    if not days and not ss and not hh:
        return mm
    return f"{days}-{hh:02d}:{mm:02d}:{ss:02d}" if days else f"{hh:02d}:{mm:02d}:{ss:02d}"


# ---------------------------------------------------------------- entry points


def _has_sbatch_call(text: str) -> bool:
    return (
        re.search(
            r"(^|[\s;&|`(])(\S*/)?sbatch(\s|$)",
            "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")),
        )
        is not None
    )


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _workflow_name(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    clean = re.sub(r"^[^A-Za-z0-9]+", "", clean)[:NAME_MAX].rstrip("-_.")
    return clean or "imported"


def import_files(
    paths: list[str],
    out_path: str | None = None,
    read_text: Callable[[str], str] = _read,
    name: str | None = None,
) -> ImportResult:
    """Translate bash chains and/or batch scripts into one workflow.

    Paths in the output (`script:`) are relative to `out_path`'s directory, or to the current directory when the
    YAML goes to stdout. Raises InputError when an input cannot be read at all.
    """
    out_dir = os.path.dirname(os.path.abspath(out_path)) if out_path else os.getcwd()
    problems: list[Problem] = []
    texts: dict[str, str] = {}
    for p in paths:
        try:
            texts[p] = read_text(p)
        except FileNotFoundError:
            problems.append(Problem("no such file", p))
        except (OSError, UnicodeDecodeError) as ex:
            problems.append(Problem(f"cannot read: {getattr(ex, 'strerror', None) or ex}", p))
    if problems:
        raise InputError(problems)

    used: set[str] = set()
    allocations: list[dict[str, Any]] = []
    warnings: list[Problem] = []
    for p in paths:
        text = texts[p]
        chain = _Chain(p, text, out_dir, read_text, used)
        if _has_sbatch_call(text):
            chain.run(text)
            if not chain.allocs:
                chain.warn("no sbatch call could be translated", None)
        else:
            directives = read_directives(text, p)
            if directives.shebang is None and not directives.directives:
                raise InputError(
                    Problem("neither a batch script (#!, #SBATCH) nor a bash chain calling sbatch", p, 1, 1)
                )
            warnings.extend(_script_warnings(directives))
            stem = directives.job_name or os.path.splitext(os.path.basename(p))[0]
            job_line = next((d.line for d in directives.directives if d.name == "job-name"), 1)
            alloc = _Alloc("a0", "", 1, os.path.abspath(p), None, None, [], directives=directives)
            alloc.name = chain.unique(stem, job_line, 1)
            chain.allocs.append(alloc)
        entries = chain.allocations(out_dir)
        chain.check_clean(entries)
        allocations.extend(entries)
        chain.warnings.sort(key=lambda w: (w.file != p, w.line is None, w.line or 0, w.col or 0))
        warnings.extend(chain.warnings)

    wf_name = _workflow_name(name) if name else _workflow_name(os.path.splitext(os.path.basename(paths[0]))[0])
    if name and wf_name != name:
        warnings.append(Problem(f"workflow name {name!r} written as {wf_name!r}", "<--name>"))
    workflow: dict[str, Any] = {"name": wf_name, "allocations": allocations}
    return ImportResult(workflow, warnings)


def to_yaml(result: ImportResult) -> str:
    header = ["# Imported by `slurmdag import`. Review before submitting."]
    if result.warnings:
        header.append(f"# {len(result.warnings)} thing(s) were not translated; see below and finish them by hand:")
        for w in result.warnings:
            header.append("#   " + str(w).replace("\n", "\n#   "))
    body = yaml.safe_dump(result.workflow, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body
