"""`stop_if:` conditions: a small expression language over an allocation's own published outputs. Pure.

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | comparison
    comparison := ref OP literal | literal OP ref        OP: == != < <= > >=
    ref        := outputs.<this allocation>.<output name>
    literal    := a number (5, -0.5, 1e-3) | a quoted string ('done', "done") | true | false

Nothing is evaluated here nor by Python at run time: `shell` turns the parsed condition into POSIX shell + awk that
the job runs after its command succeeded (docs/semantics.md, "Early stopping"). Output values and string literals
reach awk through the environment, never through the program text, so no value can change the program.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from slurmdag.model.run_layout import OUTPUT_NAME_RE

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
NUMBER_RE = re.compile(r"\A[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
MAX_LENGTH = 1000  # characters of one condition
MAX_COMPARISONS = 50

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>==|!=|<=|>=|<|>)
      | (?P<paren>[()])
      | (?P<string>'[^'\\]*'|"[^"\\]*")
      | (?P<word>[A-Za-z0-9_.+-]+)
    )""",
    re.VERBOSE,
)

HINT = (
    "write e.g. `outputs.eval.loss > 5` or `outputs.eval.loss > 5 and outputs.eval.acc < 0.5`: comparisons "
    "(== != < <= > >=) of this allocation's outputs with numbers or quoted strings, joined by and/or/not"
)


class StopIfSyntaxError(ValueError):
    """A condition that does not parse; `offset` is the 0-based position in its text."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message, self.offset = message, offset


@dataclass(frozen=True)
class Comparison:
    output: str  # the output's name
    op: str
    literal: str  # a number's text, or a string's value
    numeric: bool
    allocation: str  # as written after `outputs.`
    offset: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or" | "not"
    items: tuple[Condition, ...]


Condition = Comparison | BoolOp


@dataclass(frozen=True)
class _Tok:
    kind: str  # op, paren, string, word, end
    text: str
    offset: int


def _tokens(text: str) -> list[_Tok]:
    out = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise StopIfSyntaxError(f"unexpected {text[start]!r}", start)
        kind = m.lastgroup or "word"
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def parse(text: str) -> Condition:
    """The condition's tree; raises StopIfSyntaxError (with the offset of the problem)."""
    if len(text) > MAX_LENGTH:
        raise StopIfSyntaxError(f"the condition is {len(text):,} characters long, more than {MAX_LENGTH:,}", 0)
    parser = _Parser(_tokens(text))
    cond = parser.or_()
    tok = parser.peek()
    if tok.kind != "end":
        raise StopIfSyntaxError(f"unexpected {tok.text!r}: expected `and`, `or` or the end", tok.offset)
    if len(comparisons(cond)) > MAX_COMPARISONS:
        raise StopIfSyntaxError(f"more than {MAX_COMPARISONS} comparisons", 0)
    return cond


class _Parser:
    def __init__(self, tokens: list[_Tok]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _word(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text == word

    def or_(self) -> Condition:
        items = [self.and_()]
        while self._word("or"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_(self) -> Condition:
        items = [self.not_()]
        while self._word("and"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_(self) -> Condition:
        if self._word("not"):
            self.take()
            return BoolOp("not", (self.not_(),))
        tok = self.peek()
        if tok.kind == "paren" and tok.text == "(":
            self.take()
            inner = self.or_()
            close = self.take()
            if close.kind != "paren" or close.text != ")":
                raise StopIfSyntaxError("missing `)`", close.offset)
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        left = self.take()
        op = self.take()
        if op.kind != "op":
            where = op if left.kind != "end" else left
            what = f"{where.text!r}" if where.kind != "end" else "the end"
            raise StopIfSyntaxError(f"expected a comparison (== != < <= > >=), found {what}", where.offset)
        right = self.take()
        ref, lit, op_text = left, right, op.text
        if not _is_ref(left):
            if not _is_ref(right):
                raise StopIfSyntaxError(
                    "a comparison needs an output (`outputs.<allocation>.<name>`) on one side", left.offset
                )
            ref, lit = right, left
            op_text = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op_text, op_text)
        allocation, _, name = ref.text[len("outputs.") :].rpartition(".")
        if not allocation or not OUTPUT_NAME_RE.match(name):
            raise StopIfSyntaxError(
                f"invalid output reference {ref.text!r}: write outputs.<allocation>.<name>", ref.offset
            )
        if lit.kind == "string":
            if op_text not in ("==", "!="):
                raise StopIfSyntaxError(f"strings are compared with == or != only, not {op_text}", op.offset)
            return Comparison(name, op_text, lit.text[1:-1], False, allocation, ref.offset)
        if lit.kind == "word" and lit.text in ("true", "false"):
            if op_text not in ("==", "!="):
                raise StopIfSyntaxError(f"true/false are compared with == or != only, not {op_text}", op.offset)
            return Comparison(name, op_text, lit.text, False, allocation, ref.offset)
        if lit.kind == "word" and NUMBER_RE.match(lit.text):
            return Comparison(name, op_text, lit.text, True, allocation, ref.offset)
        what = repr(lit.text) if lit.kind != "end" else "the end"
        raise StopIfSyntaxError(f"expected a number or a quoted string, found {what}", lit.offset)


def _is_ref(tok: _Tok) -> bool:
    return tok.kind == "word" and tok.text.startswith("outputs.")


def comparisons(cond: Condition) -> list[Comparison]:
    if isinstance(cond, Comparison):
        return [cond]
    return [c for item in cond.items for c in comparisons(item)]


# --- to shell ---

_IS_NUM = r"/^[ \t\r\n]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[ \t\r\n]*$/"


def shell(cond: Condition) -> list[str]:
    """Lines of POSIX shell that exit 0 when the condition holds over the files in $SLURMDAG_OUTPUTS.

    A missing output, or a value that is not a number where a number is compared, makes its comparison false."""
    names = list(dict.fromkeys(c.output for c in comparisons(cond)))
    literals: list[str] = []
    lines = []
    env = []
    for i, name in enumerate(names):
        lines.append(
            f'if [ -f "$SLURMDAG_OUTPUTS/{name}" ]; then _SD_V{i}=$(cat "$SLURMDAG_OUTPUTS/{name}"); _SD_S{i}=1; '
            f"else _SD_V{i}=; _SD_S{i}=0; fi"
        )
        env += [f'_SD_V{i}="$_SD_V{i}"', f'_SD_S{i}="$_SD_S{i}"']

    def expr(c: Condition) -> str:
        if isinstance(c, BoolOp):
            if c.op == "not":
                return f"!({expr(c.items[0])})"
            joiner = " && " if c.op == "and" else " || "
            return "(" + joiner.join(expr(x) for x in c.items) + ")"
        i = names.index(c.output)
        present = f'ENVIRON["_SD_S{i}"] == "1"'
        value = f'ENVIRON["_SD_V{i}"]'
        if c.numeric:
            return f"({present} && {value} ~ {_IS_NUM} && ({value} + 0) {c.op} ({c.literal}))"
        literals.append(c.literal)
        j = len(literals) - 1
        return f'({present} && {value} "" {c.op} ENVIRON["_SD_L{j}"] "")'

    program = f"BEGIN {{ exit !({expr(cond)}) }}"
    env += [f"_SD_L{j}={shlex.quote(lit)}" for j, lit in enumerate(literals)]
    lines.append(" ".join(env) + " awk " + shlex.quote(program))
    return lines
