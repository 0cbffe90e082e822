"""Port existing sbatch scripts and bash chains of `sbatch --dependency` calls into slurmdag's workflow format.

Pure apart from reading the batch scripts a chain submits (through a `read_text` callable the caller may replace).
The bash reader understands the straight-line shapes chains are written in:

    A=$(sbatch --parsable a.sh)            B=`sbatch b.sh | cut -d' ' -f4`       C=$(sbatch ... | awk '{print $4}')
    ID=${OUT##* }   (aliases)              DEP="afterok:$A:$B"   (string variables, substituted)
    sbatch -d afterok:$A,afternotok:$B --array=0-9%2 -N 2 x.sh       sbatch --wrap "python x.py"

Anything else — loops, conditionals, functions, other commands, variables it cannot resolve, script arguments —
becomes a warning with its line number, and the user finishes the port by hand. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from slurmdag.compiler.script_directives import ScriptDirectives, read_directives
from slurmdag.model import slurm_values
from slurmdag.model.errors import InputError, Problem
from slurmdag.model.sbatch_options import CLIENT_ONLY, ParsedOption, Token, parse_args

NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]*\Z")

# sbatch long option -> slurmdag allocation key (design §3); the rest stays under `sbatch:` as raw flags.
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
# Commands that only print or set shell options: nothing to port.
HARMLESS = {"echo", "printf", "set", "true", ":", "exit", "shopt", "wait", "sleep", "date"}
# Pipe stages that only cut the job id out of sbatch's output.
ID_FILTERS = {"cut", "awk", "grep", "sed", "tr", "head", "tail", "xargs", "sort"}
BLOCK_OPEN = {"if", "for", "while", "until", "case", "select"}
BLOCK_CLOSE = {"fi", "done", "esac"}

JOB_L, JOB_R = "\ue000", "\ue001"  # marks a job-id variable inside a resolved word
UNK_L, UNK_R = "\ue002", "\ue003"  # marks a variable that could not be resolved


# ---------------------------------------------------------------- bash words


@dataclass
class Word:
    # (kind, text): lit (unquoted) | qlit (quoted) | var | param (text "NAME<op>") | cmd (inner source)
    parts: list[tuple[str, str]]
    col: int
    quoted_lit: bool = False  # any literal part was quoted (assignments need an unquoted NAME=)

    def literal(self) -> str | None:
        """The word's text when it is pure literal text."""
        if all(k in ("lit", "qlit") for k, _ in self.parts):
            return "".join(t for _, t in self.parts)
        return None


@dataclass
class Command:
    words: list[Word]
    line: int
    sep_before: str = ""  # the operator before it: "", ";", "&&", "||", "|", "&"


class BashSyntax(Exception):
    pass


def _assignment(w: Word) -> tuple[str, Word] | None:
    """`NAME=value` (NAME unquoted) → (NAME, value word)."""
    if not w.parts or w.parts[0][0] != "lit":
        return None
    m = re.match(r"\A([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", w.parts[0][1], re.S)
    if not m:
        return None
    rest = [("lit", m.group(2))] if m.group(2) else []
    return m.group(1), Word(rest + w.parts[1:], w.col)


def _match_paren(text: str, i: int) -> int:
    """Index of the ')' closing the '(' at text[i-1], respecting quotes and nesting."""
    depth = 1
    quote = None
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise BashSyntax("unclosed $(")


def _backticks(text: str, i: int, parts: list) -> int:
    """A `command` substitution starting at text[i]: record it, return the index after the closing backtick."""
    end = text.find("`", i + 1)
    if end < 0:
        raise BashSyntax("unclosed `")
    parts.append(("cmd", text[i + 1 : end]))
    return end + 1


def _dollar(text: str, i: int, parts: list[tuple[str, str]]) -> int:
    """Read the expansion starting at text[i] == '$'; append it to parts; return the index after it."""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt == "(":
        if text.startswith("((", i + 1):
            end = text.find("))", i + 3)
            if end < 0:
                raise BashSyntax("unclosed $((")
            parts.append(("param", "((" + text[i + 3 : end] + "))"))
            return end + 2
        end = _match_paren(text, i + 2)
        parts.append(("cmd", text[i + 2 : end]))
        return end + 1
    if nxt == "{":
        end = text.find("}", i + 2)
        if end < 0:
            raise BashSyntax("unclosed ${")
        inner = text[i + 2 : end]
        m = re.match(r"\A[A-Za-z_][A-Za-z0-9_]*\Z", inner)
        parts.append(("var", inner) if m else ("param", inner))
        return end + 1
    m = re.match(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]", text[i + 1 :])
    if not m:
        parts.append(("lit", "$"))
        return i + 1
    parts.append(("var", m.group(0)))
    return i + 1 + len(m.group(0))


def lex_commands(text: str, first_line: int = 1) -> list[Command]:
    """Split bash source into simple commands (words with expansions kept apart), following quotes, `\\`-newline,
    `$(...)` and backticks. Comments are dropped."""
    cmds: list[Command] = []
    words: list[Word] = []
    parts: list[tuple[str, str]] = []
    line = first_line
    line_start = 0
    cmd_line = first_line
    word_col = 0
    in_word = False
    quoted_lit = False
    sep = ""
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal parts, in_word, quoted_lit
        if in_word:
            merged: list[tuple[str, str]] = []
            for kind, t in parts:  # adjacent literal characters of one kind become one part
                if merged and kind in ("lit", "qlit") and merged[-1][0] == kind:
                    merged[-1] = (kind, merged[-1][1] + t)
                else:
                    merged.append((kind, t))
            words.append(Word(merged or [("qlit", "")], word_col, quoted_lit))
        parts, in_word, quoted_lit = [], False, False

    def end_cmd(next_sep: str) -> None:
        nonlocal words, sep
        end_word()
        if words:
            cmds.append(Command(words, cmd_line, sep))
        words = []
        sep = next_sep

    def start_word(at: int) -> None:
        nonlocal in_word, word_col, cmd_line
        if not in_word:
            in_word = True
            word_col = at - line_start + 1
            if not words:
                cmd_line = line

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            line += 1
            line_start = i
            continue
        if c == "\n":
            end_cmd(";")
            i += 1
            line += 1
            line_start = i
            continue
        if c in " \t":
            end_word()
            i += 1
            continue
        if c == "#" and not in_word:
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in ";&|":
            two = text[i : i + 2]
            if two in ("&&", "||", ";;"):
                end_cmd(two)
                i += 2
            else:
                end_cmd(c)
                i += 1
            continue
        start_word(i)
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise BashSyntax("unclosed '")
            chunk = text[i + 1 : end]
            parts.append(("qlit", chunk))
            line += chunk.count("\n")
            quoted_lit = True
            i = end + 1
        elif c == '"':
            i += 1
            quoted_lit = True
            while i < n and text[i] != '"':
                ch = text[i]
                if ch == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        parts.append(("qlit", text[i + 1]))
                    i += 2
                elif ch == "$":
                    start = i
                    i = _dollar(text, i, parts)
                    line += text[start:i].count("\n")
                elif ch == "`":
                    i = _backticks(text, i, parts)
                else:
                    if ch == "\n":
                        line += 1
                    parts.append(("qlit", ch))
                    i += 1
            if i >= n:
                raise BashSyntax('unclosed "')
            i += 1
        elif c == "\\":
            if i + 1 < n:
                parts.append(("qlit", text[i + 1]))
            i += 2
        elif c == "$":
            start = i
            i = _dollar(text, i, parts)
            line += text[start:i].count("\n")
        elif c == "`":
            i = _backticks(text, i, parts)
        else:
            parts.append(("lit", c))
            i += 1
    end_cmd("")
    return cmds


# ---------------------------------------------------------------- the chain


@dataclass
class _Alloc:
    key: str  # internal id
    name: str
    line: int
    script: str | None  # absolute path
    wrap: str | None
    options: list[ParsedOption]
    deps_all: list[tuple[str, str]] = field(default_factory=list)  # (alloc key, condition)
    deps_any: list[tuple[str, str]] = field(default_factory=list)
    directives: ScriptDirectives | None = None


@dataclass
class ImportResult:
    workflow: dict[str, Any]
    warnings: list[Problem]

    def to_yaml(self) -> str:
        return to_yaml(self)


class _Chain:
    def __init__(self, path: str, out_dir: str, read_text: Callable[[str], str], used_names: set[str]):
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.out_dir = out_dir
        self.read_text = read_text
        self.used_names = used_names
        self.allocs: list[_Alloc] = []
        self.vars: dict[str, tuple[str, str]] = {}  # name -> ("job", alloc key) | ("str", text) | ("unknown", why)
        self.warnings: list[Problem] = []

    def warn(self, msg: str, line: int | None, col: int | None = 1, hint: str | None = None) -> None:
        self.warnings.append(Problem(msg, self.path, line, col, hint))

    # --- resolving words

    def resolve(self, w: Word, line: int) -> str:
        out = []
        for kind, text in w.parts:
            if kind in ("lit", "qlit"):
                out.append(text)
            elif kind == "var":
                out.append(self._var(text))
            elif kind == "param":
                base = re.match(r"\A([A-Za-z_][A-Za-z0-9_]*)([#%:/].*)?\Z", text)
                if base and self.vars.get(base.group(1), ("", ""))[0] == "job":
                    out.append(self._var(base.group(1)))  # ${ID##* } etc. cut the id out of sbatch's output
                else:
                    out.append(f"{UNK_L}${{{text}}}{UNK_R}")
            else:
                alias = self._alias_cmd(text)
                out.append(f"{JOB_L}{alias}{JOB_R}" if alias else f"{UNK_L}$({text.strip()}){UNK_R}")
        return "".join(out)

    def _var(self, name: str) -> str:
        kind, val = self.vars.get(name, ("unknown", ""))
        if kind == "job":
            return f"{JOB_L}{val}{JOB_R}"
        if kind == "str":
            return val
        return f"{UNK_L}${name}{UNK_R}"

    def _alias_cmd(self, inner: str) -> str | None:
        """`$(echo $A | cut ...)` names the same job as A."""
        try:
            cmds = lex_commands(inner)
        except BashSyntax:
            return None
        if not cmds or cmds[0].words[0].literal() != "echo" or len(cmds[0].words) != 2:
            return None
        parts = cmds[0].words[1].parts
        if len(parts) == 1 and parts[0][0] in ("var", "param"):
            name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", parts[0][1])
            if name and self.vars.get(name.group(0), ("", ""))[0] == "job":
                if all(c.words[0].literal() in ID_FILTERS for c in cmds[1:]):
                    return self.vars[name.group(0)][1]
        return None

    # --- walking commands

    def run(self, text: str) -> None:
        try:
            cmds = lex_commands(text)
        except BashSyntax as ex:
            raise InputError(Problem(f"cannot read as bash: {ex}", self.path, 1, 1)) from None
        depth = 0
        opened_at = 0
        idx = 0
        while idx < len(cmds):
            cmd = cmds[idx]
            words = [w.literal() for w in cmd.words]
            first = words[0] or ""
            is_function = first == "function" or first.endswith("()") or (len(words) > 1 and words[1] == "()")
            opens = (first in BLOCK_OPEN) + sum(1 for w in words if w == "{")
            closes = (first in BLOCK_CLOSE) + (first == "}")
            if depth == 0 and (opens or is_function):
                if not (first == "{" and cmd.sep_before == "||"):  # `|| { echo ...; exit 1; }`: error handling
                    kind = "function" if is_function else ("{ } group" if first == "{" else first)
                    self.warn(
                        f"bash `{kind}` block not translated",
                        cmd.line,
                        cmd.words[0].col,
                        "port it by hand (a task group for a loop, a failure edge for an error check)",
                    )
                opened_at = cmd.line
            if depth or opens or is_function:
                if first == "{" and cmd.sep_before == "||":
                    pass
                else:
                    self._inside_block(cmd)
                depth = max(0, depth + opens - closes)
                idx += 1
                continue
            pipeline = [cmd]
            while idx + 1 < len(cmds) and cmds[idx + 1].sep_before == "|":
                idx += 1
                pipeline.append(cmds[idx])
            if cmd.sep_before in ("&&", "||") and first not in HARMLESS:
                self.warn(
                    f"command after `{cmd.sep_before}` not translated (it runs conditionally)",
                    cmd.line,
                    cmd.words[0].col,
                    "port the condition by hand",
                )
            else:
                self._simple(pipeline)
            idx += 1
        if depth:
            self.warn("bash block not closed", opened_at)

    def _inside_block(self, cmd: Command) -> None:
        for w in cmd.words:
            lit = w.literal()
            if (lit and os.path.basename(lit) == "sbatch") or any(k == "cmd" and "sbatch" in t for k, t in w.parts):
                self.warn(
                    "sbatch inside a loop, conditional or function: not translated",
                    cmd.line,
                    w.col,
                    "add the allocation(s) to the workflow by hand",
                )
                return

    def _simple(self, pipeline: list[Command]) -> None:
        cmd = pipeline[0]
        words = cmd.words
        first = words[0]
        lit = first.literal()
        if lit == "export" and len(words) == 2:
            name_value = _assignment(words[1])
            if name_value:
                self.warn(
                    f"export {name_value[0]}=... not translated: jobs submitted after it inherit it",
                    cmd.line,
                    first.col,
                    f"add {name_value[0]} to the allocations' env: if they need it",
                )
                self._assign(*name_value, cmd.line)
                return
        name_value = _assignment(first)
        if name_value:
            if len(words) > 1:
                self.warn("environment prefix on a command not translated", cmd.line, first.col)
            elif len(pipeline) > 1:
                self.warn("pipe after an assignment not translated", cmd.line, first.col)
                return
            else:
                self._assign(*name_value, cmd.line)
                return
            words = words[1:]
            first = words[0]
            lit = first.literal()
        if lit is not None and os.path.basename(lit) == "sbatch":
            self._sbatch([Command(words, cmd.line, cmd.sep_before)] + pipeline[1:], cmd.line)
            return
        if lit in HARMLESS:
            return
        shown = " ".join(self._show(self.resolve(w, cmd.line)) for w in words)[:60]
        self.warn(f"command not translated: {shown}", cmd.line, first.col, "do it yourself, or add it to setup:")

    def _assign(self, name: str, value: Word, line: int) -> None:
        parts = [p for p in value.parts if not (p[0] == "lit" and p[1] == "")]
        if len(parts) == 1 and parts[0][0] == "cmd":
            inner = parts[0][1]
            try:
                sub = lex_commands(inner, line)
            except BashSyntax as ex:
                self.vars[name] = ("unknown", str(ex))
                self.warn(f"cannot read $(...) assigned to {name}: {ex}", line)
                return
            first = sub[0].words[0].literal() if sub else None
            if first is not None and os.path.basename(first) == "sbatch":
                pipeline = [sub[0]] + [c for c in sub[1:] if c.sep_before == "|"]
                key = self._sbatch(pipeline, line, var=name)
                if key:
                    self.vars[name] = ("job", key)
                else:
                    self.vars[name] = ("unknown", "sbatch not translated")
                return
            alias = self._alias_cmd(inner)
            if alias:
                self.vars[name] = ("job", alias)
                return
            self.vars[name] = ("unknown", f"$({inner.strip()})")
            return
        if len(parts) == 1 and parts[0][0] in ("var", "param"):
            base = re.match(r"[A-Za-z_][A-Za-z0-9_]*", parts[0][1])
            if base and self.vars.get(base.group(0), ("", ""))[0] == "job":
                self.vars[name] = self.vars[base.group(0)]  # ID=${OUT##* } and friends
                return
        resolved = self.resolve(Word(parts, value.col), line)
        self.vars[name] = ("str", resolved)

    # --- one sbatch call

    def _sbatch(self, pipeline: list[Command], line: int, var: str | None = None) -> str | None:
        cmd = pipeline[0]
        for stage in pipeline[1:]:
            s = stage.words[0].literal() or ""
            if s not in ID_FILTERS:
                self.warn(f"pipe into {s or 'a command'} after sbatch not translated", stage.line, stage.words[0].col)
        tokens: list[Token] = []
        skip_next = False
        for w in cmd.words[1:]:
            lit = w.literal()
            if skip_next:
                skip_next = False
                continue
            if lit is not None and re.match(r"^(\d|&)?(>>?|<)", lit):
                if lit.startswith("<<"):
                    self.warn("sbatch reading a here-document is not translated", line, w.col)
                    return None
                # a redirection of sbatch's own output; `> file` takes the next word as its target
                skip_next = re.fullmatch(r"(\d|&)?(>>?|<)", lit) is not None
                continue
            tokens.append(Token(self.resolve(w, line), line, w.col))
        opts, operands, issues = parse_args(tokens)
        for iss in issues:
            self.warn(iss.message, iss.line, iss.col, iss.hint)
        wrap = None
        kept: list[ParsedOption] = []
        deps: list[ParsedOption] = []
        name = None
        for o in opts:
            if o.name == "wrap":
                wrap = o.value
            elif o.name == "dependency":
                deps.append(o)
            elif o.name == "job-name":
                name = o.value
            elif o.name in ("parsable", "hold", "kill-on-invalid-dep") or o.name in CLIENT_ONLY:
                if o.name == "hold":
                    self.warn("--hold dropped: slurmdag holds and releases the whole DAG itself", o.line, o.col)
                elif o.name == "kill-on-invalid-dep":
                    self.warn("--kill-on-invalid-dep dropped: slurmdag sets it on every dependent job", o.line, o.col)
                elif o.name != "parsable":
                    self.warn(f"--{o.name} only affects the sbatch command; dropped", o.line, o.col)
            else:
                kept.append(o)
        script = None
        directives = None
        if wrap is None:
            if not operands:
                self.warn("sbatch without a script (reads stdin) is not translated", line, cmd.words[0].col)
                return None
            raw = operands[0].text
            if UNK_L in raw or JOB_L in raw:
                self.warn(
                    f"script path {self._show(raw)} uses a variable that could not be resolved",
                    line,
                    operands[0].col,
                    "fix the script: path in the output",
                )
                raw = self._show(raw)
            script = os.path.normpath(os.path.join(self.base, raw))
            if len(operands) > 1:
                self.warn(
                    "script arguments not translated: " + " ".join(self._show(t.text) for t in operands[1:]),
                    line,
                    operands[1].col,
                    "read them from env: or params: in the script instead",
                )
            try:
                directives = read_directives(self.read_text(script), script)
            except (OSError, UnicodeDecodeError) as ex:
                self.warn(
                    f"cannot read batch script {raw}: {getattr(ex, 'strerror', None) or ex}", line, operands[0].col
                )
            if directives is not None:
                for p in directives.problems + [
                    n for n in directives.notes if "job-name" not in n.message and "array" not in n.message
                ]:
                    self.warnings.append(p)
                if name is None:
                    name = directives.job_name
        elif operands:
            self.warn("words after a --wrap call not translated", line, operands[0].col)
        if name is None:
            name = os.path.splitext(os.path.basename(script))[0] if script else (var.lower() if var else "wrap")
        alloc = _Alloc(
            key=f"a{len(self.allocs)}",
            name=self._unique(name),
            line=line,
            script=script,
            wrap=self._show(wrap) if wrap is not None else None,
            options=kept,
            directives=directives,
        )
        if wrap is not None and UNK_L in wrap:
            self.warn("--wrap command uses variables that could not be resolved", line, 1)
        for d in deps:
            self._dependency(alloc, d)
        for o in kept:
            if o.value is not None and (UNK_L in o.value or JOB_L in o.value):
                self.warn(
                    f"--{o.name} value uses a variable that could not be resolved: {self._show(o.value)}", o.line, o.col
                )
        self.allocs.append(alloc)
        return alloc.key

    def _show(self, text: str) -> str:
        """A resolved word for a human: job markers back to the allocation name, unknowns as written."""

        def job(m: re.Match[str]) -> str:
            return "$" + next((a.name for a in self.allocs if a.key == m.group(1)), m.group(1))

        text = re.sub(f"{JOB_L}(.*?){JOB_R}", job, text)
        return re.sub(f"{UNK_L}(.*?){UNK_R}", r"\1", text)

    def _unique(self, name: str) -> str:
        clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")
        clean = re.sub(r"^[^A-Za-z0-9]+", "", clean) or "job"
        cand, k = clean, 2
        while cand in self.used_names:
            cand = f"{clean}-{k}"
            k += 1
        self.used_names.add(cand)
        return cand

    def _dependency(self, alloc: _Alloc, opt: ParsedOption) -> None:
        value = opt.value or ""
        has_and, has_or = "," in value, "?" in value
        if has_and and has_or:
            self.warn(
                "--dependency mixes ',' and '?': Slurm reads the whole expression as OR, and so does this port",
                opt.line,
                opt.col,
                "check that OR is what you meant",
            )
        target = alloc.deps_any if has_or else alloc.deps_all
        for term in re.split(r"[,?]", value):
            if not term:
                continue
            kind, _, ids = term.partition(":")
            if kind not in CONDITION:
                self.warn(
                    f"dependency type {kind!r} has no slurmdag equivalent; not translated",
                    opt.line,
                    opt.col,
                    "after/singleton/afterburstbuffer/expand: port it by hand",
                )
                continue
            for ref in ids.split(":") if ids else []:
                plain = ref.split("+", 1)
                if len(plain) > 1:
                    self.warn(f"dependency delay +{plain[1]} not translated", opt.line, opt.col)
                m = re.fullmatch(f"{JOB_L}(.*?){JOB_R}(_\\d+)?", plain[0])
                if m:
                    if m.group(2):
                        self.warn(
                            f"dependency on one array task ({self._show(ref)}) widened to the whole array",
                            opt.line,
                            opt.col,
                        )
                    target.append((m.group(1), CONDITION[kind]))
                elif re.fullmatch(r"\d+(_\d+)?", plain[0]):
                    self.warn(
                        f"dependency on existing job id {plain[0]} not translated",
                        opt.line,
                        opt.col,
                        "a workflow can only depend on its own allocations",
                    )
                else:
                    self.warn(
                        f"dependency on {self._show(plain[0])!s} could not be resolved to an sbatch call "
                        "of this file; not translated",
                        opt.line,
                        opt.col,
                    )

    # --- output

    def allocations(self, rel_to: str) -> list[dict[str, Any]]:
        by_key = {a.key: a for a in self.allocs}
        out = []
        for a in self.allocs:
            entry: dict[str, Any] = {"name": a.name}
            if a.script is not None:
                entry["script"] = os.path.relpath(a.script, rel_to)
            else:
                entry["entrypoint"] = a.wrap
            raw: list[str] = []
            array = None
            for o in a.options:
                if o.name == "array":
                    array = o.value
                    continue
                key = KEY_FOR_OPTION.get(o.name)
                value = self._show(o.value) if o.value is not None else None
                if key and value is not None:
                    entry[key] = _typed(key, value)
                elif o.name == "exclusive" and value is None:
                    entry["exclusive"] = True
                else:
                    flag = f"--{o.name}" if value is None else f"--{o.name}={value}"
                    raw.append(flag)
            if array is None and a.directives is not None:
                array = a.directives.array
            if array is not None:
                entry["array"] = array
            if raw:
                entry["sbatch"] = raw
            deps = _edges(a.deps_all, by_key)
            if deps:
                entry["depends_on"] = deps
            anys = _edges(a.deps_any, by_key)
            if anys:
                entry["depends_on_any"] = anys
            out.append(entry)
        return out


def _edges(deps: list[tuple[str, str]], by_key: dict[str, _Alloc]) -> list[Any]:
    seen: dict[str, str] = {}
    for key, cond in deps:
        name = by_key[key].name
        if name not in seen or seen[name] == cond:
            seen[name] = cond
        else:
            seen[name + "\0" + cond] = cond  # same parent, two conditions: keep both
    out: list[Any] = []
    for name, cond in seen.items():
        name = name.split("\0")[0]
        out.append(name if cond == "success" else {name: cond})
    return out


def _typed(key: str, value: str) -> Any:
    if key in INT_KEYS and value.isdigit():
        return int(value)
    if key == "walltime":
        return slurm_time_to_walltime(value)
    return value


def slurm_time_to_walltime(value: str) -> Any:
    """A ported --time value as a workflow writes it: whole minutes below an hour, else "[D-]HH:MM:SS"."""
    try:
        seconds = slurm_values.parse_walltime(value)
    except ValueError:
        return value  # UNLIMITED and friends: left as written for the user to judge
    if seconds < 3600 and seconds % 60 == 0:
        return seconds // 60
    return slurm_values.format_walltime(seconds)


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
        chain = _Chain(p, out_dir, read_text, used)
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
            warnings.extend(directives.problems)
            warnings.extend(n for n in directives.notes if "job-name" not in n.message and "array" not in n.message)
            stem = directives.job_name or os.path.splitext(os.path.basename(p))[0]
            chain.allocs.append(
                _Alloc("a0", chain._unique(stem), 1, os.path.abspath(p), None, [], directives=directives)
            )
        allocations.extend(chain.allocations(out_dir))
        warnings.extend(chain.warnings)

    wf_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.splitext(os.path.basename(paths[0]))[0]) or "imported"
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
