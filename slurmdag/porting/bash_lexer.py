"""Read bash source the way bash splits it, for the importer: words (with quotes and expansions kept apart),
simple commands joined by `;` `&&` `||` `|` `&`, redirections (here-documents included), and the compound commands
chains are written with (`for`, `while`/`until`, `if`, `case`, `{ }`, `( )`, functions) as a tree.

Pure: text in, data out. It does not expand anything; the importer decides what a word means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

PartKind = Literal["lit", "var", "param", "cmd", "arith"]


class BashSyntaxError(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Part:
    """One piece of a word: literal text, `$NAME`, `${...}` (text: what is inside the braces), `$(...)` or backticks
    (text: the inner source), `$((...))` / `((...))` (text: the expression)."""

    kind: PartKind
    text: str
    quoted: bool = False  # inside '...' or "..." (or escaped): no word splitting, no brace expansion


@dataclass
class Word:
    parts: list[Part]
    line: int
    col: int
    array: list[Word] | None = None  # `NAME=( ... )`: the elements (the word itself is `NAME=`)

    def literal(self) -> str | None:
        """The word's text when it has no expansion."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None

    def source(self) -> str:
        """The word roughly as written (for messages)."""
        out = []
        for p in self.parts:
            if p.kind == "lit":
                out.append(p.text)
            elif p.kind == "var":
                out.append("$" + p.text)
            elif p.kind == "param":
                out.append("${" + p.text + "}")
            elif p.kind == "cmd":
                out.append("$(" + p.text.strip() + ")")
            else:
                out.append("$((" + p.text + "))")
        return "".join(out)


@dataclass
class Redirect:
    op: str  # ">", ">>", "<", "2>", "&>", ">&", "<<", "<<-", "<<<", ...
    target: Word | None
    heredoc: str | None = None  # the here-document's text


@dataclass
class Command:
    """A simple command: words, redirections, and the operator that joined it to the command before."""

    words: list[Word]
    line: int
    sep_before: str = ""  # "", ";", "&&", "||", "|", "&", ";;"
    redirects: list[Redirect] = field(default_factory=list)

    def first(self) -> str | None:
        return self.words[0].literal() if self.words else None


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Reserved words after which a new command starts on the same line (`while [[ ... ]]`, `do X=...`).
_BEFORE_COMMAND = frozenset({"if", "elif", "while", "until", "!", "then", "do", "else", "{", "("})
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?(\+?=)(.*)", re.S)


def indexed_assignment(w: Word) -> tuple[str, str, str, Word] | None:
    """`NAME[index]=value` -> (NAME, index as written, "=" or "+=", value word)."""
    if not w.parts or w.parts[0].kind != "lit" or w.parts[0].quoted:
        return None
    # the index may hold expansions (`jid[$num]=...`): join the word's source up to `]=`
    head = w.source()
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\[([^\]]*)\](\+?=)", head)
    if not m:
        return None
    taken = len(m.group(0))
    rest: list[Part] = []
    pos = 0
    for p in w.parts:  # the parts after `]=`, as they were
        text = p.text if p.kind == "lit" else None
        size = len(Word([p], 0, 0).source())
        if pos >= taken:
            rest.append(p)
        elif pos + size > taken and text is not None:
            rest.append(Part("lit", text[taken - pos :], p.quoted))
        elif pos + size > taken:
            return None
        pos += size
    return m.group(1), m.group(2), m.group(3), Word(rest, w.line, w.col, w.array)


def assignment(w: Word) -> tuple[str, str, Word] | None:
    """`NAME=value` / `NAME+=value` (NAME unquoted) -> (NAME, "=" or "+=", value word)."""
    if not w.parts or w.parts[0].kind != "lit" or w.parts[0].quoted:
        return None
    m = ASSIGNMENT.fullmatch(w.parts[0].text)
    if not m or m.group(2):
        return None
    rest = [Part("lit", m.group(4))] if m.group(4) else []
    return m.group(1), m.group(3), Word(rest + w.parts[1:], w.line, w.col, w.array)


# ---------------------------------------------------------------- the lexer


class _Lexer:
    def __init__(self, text: str, first_line: int):
        self.text = text
        self.n = len(text)
        self.i = 0
        self.line = first_line
        self.line_start = 0
        self.cmds: list[Command] = []
        self.words: list[Word] = []
        self.redirects: list[Redirect] = []
        self.parts: list[Part] = []
        self.in_word = False
        self.word_line = first_line
        self.word_col = 1
        self.cmd_line = first_line
        self.sep = ""
        self.pending_heredocs: list[tuple[str, bool, Redirect]] = []
        self.test_depth = 0  # inside [[ ... ]]: && || < > ( ) are words

    # --- positions

    def col(self, at: int) -> int:
        return at - self.line_start + 1

    def newline_at(self, at: int) -> None:
        self.line += 1
        self.line_start = at + 1

    def count_newlines(self, start: int, end: int) -> None:
        for k in range(start, end):
            if self.text[k] == "\n":
                self.newline_at(k)

    # --- building

    def start_word(self) -> None:
        if not self.in_word:
            self.in_word = True
            self.word_line = self.line
            self.word_col = self.col(self.i)
            if not self.words and not self.redirects:
                self.cmd_line = self.line

    def end_word(self) -> Word | None:
        if not self.in_word:
            return None
        merged: list[Part] = []
        for p in self.parts:  # adjacent literal characters of one kind become one part
            if merged and p.kind == "lit" and merged[-1].kind == "lit" and merged[-1].quoted == p.quoted:
                merged[-1] = Part("lit", merged[-1].text + p.text, p.quoted)
            else:
                merged.append(p)
        word = Word(merged or [Part("lit", "", True)], self.word_line, self.word_col)
        self.parts, self.in_word = [], False
        target = self.redirects[-1] if self.redirects and self.redirects[-1].target is None else None
        if target is not None and target.op not in ("<<", "<<-"):
            target.target = word
        elif target is not None:
            target.target = word
            delim = "".join(p.text for p in word.parts)
            self.pending_heredocs.append((delim, target.op == "<<-", target))
        else:
            self.words.append(word)
        return word

    def end_cmd(self, next_sep: str) -> None:
        self.end_word()
        if self.words or self.redirects:
            self.cmds.append(Command(self.words, self.cmd_line, self.sep, self.redirects))
        elif next_sep in ("&&", "||", "|") and self.sep not in ("", ";"):
            raise BashSyntaxError(f"syntax error near `{next_sep}`", self.line)
        self.words, self.redirects = [], []
        self.sep = next_sep
        self.test_depth = 0

    # --- pieces

    def read_heredocs(self) -> None:
        """After a newline: the bodies of the here-documents started on the line just ended."""
        for delim, strip_tabs, redirect in self.pending_heredocs:
            body: list[str] = []
            while True:
                if self.i >= self.n:
                    raise BashSyntaxError(f"here-document delimited by {delim!r} is not closed", self.line)
                end = self.text.find("\n", self.i)
                end = self.n if end < 0 else end
                raw = self.text[self.i : end]
                self.i = end + 1
                self.newline_at(end)
                line = raw.lstrip("\t") if strip_tabs else raw
                if line == delim:
                    break
                body.append(line)
            redirect.heredoc = "\n".join(body) + ("\n" if body else "")
        self.pending_heredocs = []

    def match_paren(self, i: int) -> int:
        """Index of the ')' closing the '(' just before text[i], respecting quotes, nesting and comments."""
        depth = 1
        quote: str | None = None
        while i < self.n:
            c = self.text[i]
            if quote:
                if c == "\\" and quote == '"':
                    i += 1
                elif c == quote:
                    quote = None
            elif c == "\\":
                i += 1
            elif c in "'\"`":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise BashSyntaxError("unclosed $(", self.line)

    def match_brace(self, i: int) -> int:
        """Index of the '}' closing a `${` whose body starts at text[i]."""
        depth = 1
        quote: str | None = None
        while i < self.n:
            c = self.text[i]
            if quote:
                if c == "\\" and quote == '"':
                    i += 1
                elif c == quote:
                    quote = None
            elif c == "\\":
                i += 1
            elif c in "'\"":
                quote = c
            elif c == "{" and self.text[i - 1] == "$":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise BashSyntaxError("unclosed ${", self.line)

    def dollar(self, quoted: bool) -> None:
        """The expansion at text[i] == '$'."""
        t, i = self.text, self.i
        nxt = t[i + 1] if i + 1 < self.n else ""
        start = i
        if t.startswith("$((", i):
            end = self.match_paren(i + 3)
            if end + 1 < self.n and t[end + 1] == ")":
                self.parts.append(Part("arith", t[i + 3 : end], quoted))
                self.i = end + 2
            else:  # `$( (cd x); y )`: a command substitution starting with a subshell
                end = self.match_paren(i + 2)
                self.parts.append(Part("cmd", t[i + 2 : end], quoted))
                self.i = end + 1
        elif nxt == "(":
            end = self.match_paren(i + 2)
            self.parts.append(Part("cmd", t[i + 2 : end], quoted))
            self.i = end + 1
        elif nxt == "{":
            end = self.match_brace(i + 2)
            inner = t[i + 2 : end]
            self.parts.append(Part("var" if NAME.fullmatch(inner) else "param", inner, quoted))
            self.i = end + 1
        elif nxt == "'" and not quoted:
            end = i + 2
            out = []
            while end < self.n and t[end] != "'":
                if t[end] == "\\" and end + 1 < self.n:
                    esc = t[end + 1]
                    out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(esc, "\\" + esc))
                    end += 2
                else:
                    out.append(t[end])
                    end += 1
            if end >= self.n:
                raise BashSyntaxError("unclosed $'", self.line)
            self.parts.append(Part("lit", "".join(out), True))
            self.i = end + 1
        elif nxt == '"' and not quoted:
            self.i = i + 1  # $"..." (a translated string) reads like "..."
            return
        else:
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]").match(t, i + 1)
            if not m:
                self.parts.append(Part("lit", "$", quoted))
                self.i = i + 1
            else:
                self.parts.append(Part("var", m.group(0), quoted))
                self.i = m.end()
        self.count_newlines(start, self.i)

    def backticks(self, quoted: bool) -> None:
        start = self.i
        end = self.i + 1
        inner = []
        while end < self.n and self.text[end] != "`":
            if self.text[end] == "\\" and end + 1 < self.n and self.text[end + 1] in "`$\\":
                inner.append(self.text[end + 1])
                end += 2
                continue
            inner.append(self.text[end])
            end += 1
        if end >= self.n:
            raise BashSyntaxError("unclosed `", self.line)
        self.parts.append(Part("cmd", "".join(inner), quoted))
        self.i = end + 1
        self.count_newlines(start, self.i)

    def double_quoted(self) -> None:
        t = self.text
        self.i += 1
        while self.i < self.n and t[self.i] != '"':
            ch = t[self.i]
            if ch == "\\" and self.i + 1 < self.n and t[self.i + 1] in '$`"\\\n':
                if t[self.i + 1] == "\n":
                    self.newline_at(self.i + 1)
                else:
                    self.parts.append(Part("lit", t[self.i + 1], True))
                self.i += 2
            elif ch == "$":
                self.dollar(True)
            elif ch == "`":
                self.backticks(True)
            else:
                if ch == "\n":
                    self.newline_at(self.i)
                self.parts.append(Part("lit", ch, True))
                self.i += 1
        if self.i >= self.n:
            raise BashSyntaxError('unclosed "', self.line)
        self.i += 1

    def redirect(self) -> bool:
        """A redirection operator at text[i] (with the fd digits of the word being read); True if one was read."""
        t = self.text
        m = re.compile(r"&>>|&>|<<<|<<-|<<|<>|>>|>&|<&|>\||>|<").match(t, self.i)
        if not m:
            return False
        fd = ""
        if self.in_word:
            lit = "".join(p.text for p in self.parts)
            if not (self.parts and all(p.kind == "lit" and not p.quoted for p in self.parts) and lit.isdigit()):
                self.end_word()
            else:
                fd = lit
                self.parts, self.in_word = [], False
        if not self.words and not self.redirects:
            self.cmd_line = self.line
        op = fd + m.group(0)
        self.i = m.end()
        if m.group(0) in (">&", "<&") and self.i < self.n and (t[self.i].isdigit() or t[self.i] == "-"):
            d = re.compile(r"[0-9]+|-").match(t, self.i)
            assert d is not None
            self.redirects.append(Redirect(op + d.group(0), None))
            self.redirects[-1].target = Word([Part("lit", d.group(0))], self.line, self.col(self.i))
            self.i = d.end()
            return True
        self.redirects.append(Redirect(op, None))
        return True

    # --- the main loop

    def run(self) -> list[Command]:
        t = self.text
        while self.i < self.n:
            c = t[self.i]
            if c == "\\" and self.i + 1 < self.n and t[self.i + 1] == "\n":
                self.newline_at(self.i + 1)
                self.i += 2
                continue
            if c == "\n":
                self.end_cmd(";")
                self.newline_at(self.i)
                self.i += 1
                if self.pending_heredocs:
                    self.read_heredocs()
                continue
            if c in " \t\r":
                self.end_word()
                self.i += 1
                continue
            if c == "#" and not self.in_word:
                while self.i < self.n and t[self.i] != "\n":
                    self.i += 1
                continue
            if self.test_depth:
                if not self.in_word and t.startswith("]]", self.i) and self.at_word_end(self.i + 2):
                    self.start_word()
                    self.parts.append(Part("lit", "]]"))
                    self.i += 2
                    self.end_word()
                    self.test_depth = 0
                    continue
                if not self.in_word and (c in "&|<>()" or (c == "!" and self.at_word_end(self.i + 1))):
                    two = t[self.i : self.i + 2]
                    token = two if two in ("&&", "||") else c
                    self.start_word()
                    self.parts.append(Part("lit", token))
                    self.i += len(token)
                    self.end_word()
                    continue
            if c in ";&|":
                two = t[self.i : self.i + 2]
                if two in ("&>",) or (c == "&" and t.startswith("&>", self.i)):
                    self.redirect()
                    continue
                if two in ("&&", "||", ";;", "|&"):
                    self.end_cmd("|" if two == "|&" else two)
                    self.i += 2
                else:
                    self.end_cmd(c)
                    self.i += 1
                continue
            if c in "<>" and self.redirect():
                continue
            if self.in_word and t.startswith("((", self.i) and [p.text for p in self.parts] == ["f", "o", "r"]:
                self.end_word()  # `for((i=0; ...))` without a blank
            if not self.in_word and t.startswith("((", self.i):
                end = self.match_paren(self.i + 2)
                if end + 1 < self.n and t[end + 1] == ")":
                    self.start_word()
                    self.parts.append(Part("arith", t[self.i + 2 : end]))
                    start = self.i
                    self.i = end + 2
                    self.count_newlines(start, self.i)
                    self.end_word()
                    continue
            if not self.in_word and c in "()":
                # `(` opens a subshell (or is part of `name ()`); `)` closes one and ends its last command
                closes = c == ")" and not (self.words and self.words[-1].literal() == "(")
                if closes:
                    self.end_cmd(";")
                self.start_word()
                self.parts.append(Part("lit", c))
                self.i += 1
                self.end_word()
                if closes:
                    self.end_cmd(";")
                continue
            if (
                not self.in_word
                and all(w.literal() in _BEFORE_COMMAND for w in self.words)
                and t.startswith("[[", self.i)
                and self.at_word_end(self.i + 2)
            ):
                self.test_depth = 1
            self.start_word()
            if c == "'":
                end = t.find("'", self.i + 1)
                if end < 0:
                    raise BashSyntaxError("unclosed '", self.line)
                self.parts.append(Part("lit", t[self.i + 1 : end], True))
                self.count_newlines(self.i, end)
                self.i = end + 1
            elif c == '"':
                self.double_quoted()
            elif c == "\\":
                if self.i + 1 < self.n:
                    self.parts.append(Part("lit", t[self.i + 1], True))
                self.i += 2
            elif c == "$":
                self.dollar(False)
            elif c == "`":
                self.backticks(False)
            elif c == "(" and self.parts and self.is_array_start():
                self.array_assignment()
            else:
                self.parts.append(Part("lit", c))
                self.i += 1
        self.end_cmd("")
        if self.pending_heredocs:
            raise BashSyntaxError(
                f"here-document delimited by {self.pending_heredocs[0][0]!r} is not closed", self.line
            )
        return self.cmds

    def at_word_end(self, k: int) -> bool:
        return k >= self.n or self.text[k] in " \t\n;&|<>()"

    def is_array_start(self) -> bool:
        lit = "".join(p.text for p in self.parts)
        return (
            all(p.kind == "lit" and not p.quoted for p in self.parts)
            and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\+?=", lit) is not None
        )

    def array_assignment(self) -> None:
        """`NAME=( a b "c d" )`: the elements become the word's `array`."""
        end = self.match_paren(self.i + 1)
        inner = _Lexer(self.text[self.i + 1 : end], self.line)
        inner.line_start = self.line_start - (self.i + 1)
        elements = [w for cmd in inner.run() for w in cmd.words]
        self.count_newlines(self.i, end)
        self.i = end + 1
        word_line, word_col = self.word_line, self.word_col
        word = self.end_word()
        if word is not None:
            word.array = elements
            word.line, word.col = word_line, word_col


def lex_commands(text: str, first_line: int = 1) -> list[Command]:
    """Split bash source into simple commands. Comments are dropped; here-document bodies are attached to their
    redirection. Raises BashSyntaxError for unclosed quotes, substitutions and here-documents."""
    return _Lexer(text, first_line).run()


# ---------------------------------------------------------------- compound commands


@dataclass
class Simple:
    """A pipeline of simple commands; `sep_before` is the operator that joined it to what ran before."""

    pipeline: list[Command]
    sep_before: str

    @property
    def line(self) -> int:
        return self.pipeline[0].line


@dataclass
class ForIn:
    var: str
    items: list[Word] | None  # None: `for x; do` (the script's arguments)
    body: list[Node]
    line: int
    sep_before: str = ""


@dataclass
class ForArith:
    init: str
    cond: str
    step: str
    body: list[Node]
    line: int
    sep_before: str = ""


@dataclass
class While:
    cond: list[Node]
    body: list[Node]
    until: bool
    line: int
    sep_before: str = ""


@dataclass
class If:
    branches: list[tuple[list[Node], list[Node]]]  # (condition, body), `elif`s included
    orelse: list[Node] | None
    line: int
    sep_before: str = ""


@dataclass
class Group:
    body: list[Node]
    subshell: bool
    line: int
    sep_before: str = ""


@dataclass
class Opaque:
    """A compound command the importer does not run: `case`, `select`, a function definition."""

    kind: str
    commands: list[Command]
    line: int
    name: str | None = None  # a function's name
    sep_before: str = ""
    body: list[Node] | None = None  # a function's body


Node = Simple | ForIn | ForArith | While | If | Group | Opaque

_RESERVED_FIRST = {"do", "then", "else", "{", "(", "!"}


@dataclass
class _Item:
    kind: str  # "cmd" or a reserved word
    cmd: Command


def _items(cmds: list[Command]) -> list[_Item]:
    """Simple commands, with reserved words that start a command split off as their own items."""
    out: list[_Item] = []
    for c in cmds:
        words = list(c.words)
        sep = c.sep_before
        name = _function_name(Command(words, c.line))
        if name is not None:  # `name() { body...`: the header, then `{` and the body's first command
            header = 2 if words[0].literal() == "function" else (3 if words[1:2] and words[1].literal() == "(" else 1)
            if words[0].literal() == "function" and len(words) > 2 and words[2].literal() == "()":
                header = 3
            out.append(_Item("cmd", Command(words[:header], c.line, sep)))
            words, sep = words[header:], ""
        while words:
            w = words[0].literal()
            if w in _RESERVED_FIRST or w in ("if", "elif", "while", "until") and not words[0].parts[0].quoted:
                out.append(_Item(w, Command([words[0]], words[0].line, sep)))
                words = words[1:]
                sep = ""
                continue
            if w == "for" and len(words) > 1 and words[1].parts[0].kind == "arith":
                out.append(_Item("for", Command(words[:2], words[0].line, sep)))
                words, sep = words[2:], ""
                continue
            break
        if not words and not c.redirects:
            continue
        line = words[0].line if words else c.line
        out.append(_Item("cmd", Command(words, line, sep, c.redirects)))
    return out


class _Parser:
    def __init__(self, items: list[_Item]):
        self.items = items
        self.k = 0

    def peek(self) -> _Item | None:
        return self.items[self.k] if self.k < len(self.items) else None

    def word_at_start(self) -> str | None:
        item = self.peek()
        if item is None:
            return None
        if item.kind != "cmd":
            return item.kind
        return item.cmd.first()

    def expect(self, word: str, opener: str, line: int) -> _Item:
        item = self.peek()
        if item is None or (item.kind != word and not (item.kind == "cmd" and item.cmd.first() == word)):
            raise BashSyntaxError(f"`{opener}` at line {line} has no `{word}`", line)
        self.k += 1
        if item.kind == "cmd" and len(item.cmd.words) > 1:
            # `done > log` and `fi | tee` leave nothing to run; `done; x` is split by the lexer already
            pass
        return item

    def parse(self, stop: tuple[str, ...] = (), opener: tuple[str, int] | None = None) -> list[Node]:
        nodes: list[Node] = []
        while True:
            item = self.peek()
            if item is None:
                if stop:
                    kw, at = opener or (stop[0], self.items[-1].cmd.line if self.items else 1)
                    raise BashSyntaxError(f"`{kw}` at line {at} has no `{stop[-1]}`", at)
                return nodes
            first = item.kind if item.kind != "cmd" else item.cmd.first()
            if first in stop:
                return nodes
            if first in ("done", "fi", "esac", "}", ")", "then", "do", "else", "elif"):
                raise BashSyntaxError(f"unexpected `{first}`", item.cmd.line)
            nodes.append(self.node())

    def node(self) -> Node:
        item = self.peek()
        assert item is not None
        cmd = item.cmd
        sep = cmd.sep_before
        line = cmd.line
        kind = item.kind
        if kind in ("if",):
            self.k += 1
            branches = []
            cond = self.parse(("then",), ("if", line))
            self.expect("then", "if", line)
            body = self.parse(("elif", "else", "fi"), ("if", line))
            branches.append((cond, body))
            orelse = None
            while True:
                w = self.word_at_start()
                if w == "elif":
                    self.k += 1
                    cond = self.parse(("then",), ("elif", line))
                    self.expect("then", "elif", line)
                    body = self.parse(("elif", "else", "fi"), ("if", line))
                    branches.append((cond, body))
                elif w == "else":
                    self.k += 1
                    orelse = self.parse(("fi",), ("if", line))
                else:
                    self.expect("fi", "if", line)
                    return If(branches, orelse, line, sep)
        if kind in ("while", "until"):
            self.k += 1
            cond = self.parse(("do",), (kind, line))
            self.expect("do", kind, line)
            body = self.parse(("done",), (kind, line))
            self.expect("done", kind, line)
            return While(cond, body, kind == "until", line, sep)
        if kind == "for":  # for ((init; cond; step))
            self.k += 1
            parts = cmd.words[1].parts[0].text.split(";")
            if len(parts) != 3:
                raise BashSyntaxError("`for ((...))` needs three expressions", line)
            self.skip_to_do("for", line)
            body = self.parse(("done",), ("for", line))
            self.expect("done", "for", line)
            return ForArith(parts[0].strip(), parts[1].strip(), parts[2].strip(), body, line, sep)
        if kind in ("{", "("):
            self.k += 1
            close = "}" if kind == "{" else ")"
            body = self.parse((close,), (kind, line))
            self.expect(close, kind, line)
            return Group(body, kind == "(", line, sep)
        if kind in ("do", "then", "else", "!"):
            if kind == "!":
                self.k += 1
                return self.node()
            raise BashSyntaxError(f"unexpected `{kind}`", line)
        first = cmd.first()
        if first == "for" and len(cmd.words) >= 2:
            self.k += 1
            var = cmd.words[1].literal() or ""
            if not NAME.fullmatch(var):
                raise BashSyntaxError(f"`for` needs a variable name, not {cmd.words[1].source()!r}", line)
            items: list[Word] | None = None
            rest = cmd.words[2:]
            if rest and rest[0].literal() == "in":
                items = rest[1:]
            elif rest and rest[-1].literal() != "do":
                raise BashSyntaxError("`for NAME in WORDS`: expected `in`", line)
            if items and items[-1].literal() == "do":  # `for x in a b do` is not bash, but be lenient
                items = items[:-1]
                body = self.parse(("done",), ("for", line))
            else:
                self.skip_to_do("for", line)
                body = self.parse(("done",), ("for", line))
            self.expect("done", "for", line)
            return ForIn(var, items, body, line, sep)
        if first in ("case", "select"):
            end = "esac" if first == "case" else "done"
            start = self.k
            depth = 0
            while self.k < len(self.items):
                w = self.items[self.k].cmd.first() if self.items[self.k].kind == "cmd" else self.items[self.k].kind
                if w == first or (first == "select" and w in ("while", "until", "for")):
                    depth += 1
                elif w == end:
                    depth -= 1
                    if depth == 0:
                        self.k += 1
                        return Opaque(first, [i.cmd for i in self.items[start : self.k]], line, None, sep)
                self.k += 1
            raise BashSyntaxError(f"`{first}` at line {line} has no `{end}`", line)
        name = _function_name(cmd)
        if name is not None:
            self.k += 1
            nxt = self.peek()
            if nxt is None or nxt.kind != "{":
                raise BashSyntaxError(f"function {name} has no `{{ }}` body", line)
            start = self.k
            self.k += 1
            body = self.parse(("}",), (f"function {name}", line))
            self.expect("}", "{", line)
            return Opaque("function", [i.cmd for i in self.items[start : self.k]], line, name, sep, body)
        # a pipeline
        self.k += 1
        pipeline = [cmd]
        while True:
            nxt = self.peek()
            if nxt is None or nxt.kind != "cmd" or nxt.cmd.sep_before != "|":
                break
            pipeline.append(nxt.cmd)
            self.k += 1
        return Simple(pipeline, sep)

    def skip_to_do(self, opener: str, line: int) -> None:
        self.expect("do", opener, line)


def _function_name(cmd: Command) -> str | None:
    words = [w.literal() for w in cmd.words]
    if words and words[0] == "function" and len(words) >= 2 and words[1]:
        return words[1].removesuffix("()")
    if words and words[0] and words[0].endswith("()") and NAME.fullmatch(words[0][:-2]):
        return words[0][:-2]
    if len(words) >= 3 and words[0] and NAME.fullmatch(words[0]) and words[1] == "(" and words[2] == ")":
        return words[0]
    return None


def parse_script(text: str, first_line: int = 1) -> list[Node]:
    """The script as a list of nodes (compound commands with their bodies). Raises BashSyntaxError."""
    return _Parser(_items(lex_commands(text, first_line))).parse()
