"""YAML text -> a tree of nodes that remember where they were written (1-based line and column).

PyYAML's plain loaders throw positions away, so this composes the node tree and keeps the marks. The same node
types are built from Python data (the Python API) with a dotted path instead of a position, so validation is one
code path for both inputs. Pure: takes text, returns nodes or raises InputError.
"""

from __future__ import annotations

import datetime
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from slurmdag.model.errors import InputError, Problem, shown

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_TAG = "tag:yaml.org,2002:int"

# PyYAML resolves plain scalars by YAML 1.1 rules, where `1:00:00` is the integer 3600, `010` is 8 and `yes` is
# true. Workflows are read by the YAML 1.2 core schema instead (what current YAML tools and editors use): those are
# the strings "1:00:00" and "yes", and `010`, which the two versions read as different numbers, is refused.
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT_TAG, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+0123456789.",
    ),
    # not YAML 1.2, kept only to name `<<` in a clear refusal (_Composer._key)
    ("tag:yaml.org,2002:merge", re.compile(r"^<<$"), "<"),
]
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9]+$")
# Booleans to YAML 1.1 only: text to YAML 1.2. Where a boolean is wanted, the refusal says so (bool_hint).
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}


def bool_hint(value: object) -> str | None:
    """A hint for a YAML 1.1 boolean word given where a boolean is wanted."""
    if isinstance(value, str) and value.lower() in _YAML11_BOOLEANS:
        return f"{value!r} is text in YAML 1.2 (workflows are read as YAML 1.2): write true or false"
    return None


def _core_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = type(f"Core{base.__name__}", (base,), {"yaml_implicit_resolvers": {}})
    for tag, pattern, first in _CORE_RESOLVERS:
        loader.add_implicit_resolver(tag, pattern, list(first) + ([""] if tag.endswith("null") else []))
    loader.add_constructor(_INT_TAG, _construct_int)
    return loader


def _construct_int(loader: Any, node: Any) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


# libyaml is ~10x faster; its error messages are terser, so syntax errors are re-read with the Python loader.
_FastLoader = _core_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_PyLoader = _core_loader(yaml.SafeLoader)

SCALAR_TYPES = (str, int, float, bool, type(None), datetime.date, datetime.datetime)


class Node:
    """A YAML value with its position. `line` is None for values built from Python (then `path` says where)."""

    __slots__ = ("value", "line", "col", "path")

    def __init__(self, value: Any, line: int | None, col: int | None, path: str = ""):
        self.value = value
        self.line = line
        self.col = col
        self.path = path

    def plain(self) -> Any:
        return self.value

    def __repr__(self) -> str:  # debugging aid only
        return f"{type(self).__name__}({self.value!r} @ {self.line}:{self.col})"


class ScalarNode(Node):
    __slots__ = ()


class SeqNode(Node):
    """`value` is a list of Nodes."""

    __slots__ = ()

    def plain(self) -> Any:
        return [item.plain() for item in self.value]


class MapNode(Node):
    """`value` maps each key (a scalar) to its value Node; `keys` maps each key to the Node of the key itself."""

    __slots__ = ("keys",)

    def __init__(self, value: dict, keys: dict, line: int | None, col: int | None, path: str = ""):
        super().__init__(value, line, col, path)
        self.keys = keys

    def plain(self) -> Any:
        return {k: v.plain() for k, v in self.value.items()}


def type_name(node: Node) -> str:
    """How a user would name the kind of value they wrote."""
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    v = node.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (datetime.date, datetime.datetime)):
        return "a date"
    return type(v).__name__


# --- from text ---------------------------------------------------------------------------------------------------


def parse_yaml(text: str, file: str, list_limit: tuple[str, int] | None = None) -> Node | None:
    """Parse one YAML document into Nodes; None for an empty document. Raises InputError with every problem found.

    `list_limit` = (key, n): the list under the top-level `key` may hold at most n items; the item after the n-th
    raises TooManyItemsError as soon as it is read, so an oversized file is refused without reading the rest of it.
    """
    loader = _FastLoader(text)
    problems: list[Problem] = []
    try:
        root = _Composer(loader, file, problems, list_limit).compose()
    except yaml.YAMLError:
        raise InputError([_syntax_problem(text, file)]) from None
    except _RefusedError as e:
        raise InputError(problems + [e.problem]) from None
    finally:
        loader.dispose()
    if problems:
        raise InputError(problems)
    return root


class TooManyItemsError(Exception):
    """The list under a top-level key holds more items than `parse_yaml(list_limit=...)` allows."""

    def __init__(self, key: str, limit: int, line: int, col: int):
        super().__init__(f"more than {limit} items under {key!r}")
        self.key, self.limit, self.line, self.col = key, limit, line, col


def _syntax_problem(text: str, file: str) -> Problem:
    """Describe a YAML syntax error with the Python loader's wording, whichever loader found it."""
    try:
        _PyLoader(text).get_single_node()
        err: yaml.YAMLError = yaml.YAMLError("invalid YAML")
    except yaml.YAMLError as e:
        err = e
    mark = getattr(err, "problem_mark", None)
    line: int | None
    col: int | None
    if isinstance(err, yaml.reader.ReaderError):
        line, col = _line_col(text, err.position)
        code = ord(err.character) if isinstance(err.character, str) else int(err.character)
        what = f"#x{code:04x}"
        return Problem(
            f"invalid YAML: unacceptable character {what}",
            file,
            line,
            col,
            hint=(
                'control characters are not allowed in YAML; quote them with escapes ("\\t") in a double-quoted string'
            ),
        )
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    problem = getattr(err, "problem", None) or str(err)
    if mark is not None and _tab_in_indent(text, mark.line):
        return Problem(
            "invalid YAML: tab character used for indentation",
            file,
            line,
            _tab_col(text, mark.line),
            hint="YAML indentation must use spaces, not tabs",
        )
    context = getattr(err, "context", None)
    hint = "check the indentation and the quoting of values that contain ':' or '#'"
    if context:
        hint = f"{context}; {hint}"
    return Problem(f"invalid YAML: {problem}", file, line, col, hint=hint)


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    line = before.count("\n") + 1
    return line, position - (before.rfind("\n") + 1) + 1


def _tab_in_indent(text: str, line0: int) -> bool:
    lines = text.split("\n")
    if line0 >= len(lines):
        return False
    line = lines[line0]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    return "\t" in indent


def _tab_col(text: str, line0: int) -> int:
    return text.split("\n")[line0].index("\t") + 1


MAX_DEPTH = 64  # nesting of mappings and lists; a workflow needs about 6 (allocations > matrix > values)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SKIP = object()  # a mapping entry whose key was refused: its value is read and dropped


class _RefusedError(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


class _Composer:
    """YAML events -> Nodes, without recursion (libyaml's own composer recurses in C, so a deeply nested file
    crashes the interpreter): nesting deeper than MAX_DEPTH is refused where it starts. Problems are collected
    instead of stopping at the first."""

    def __init__(self, loader: Any, file: str, problems: list[Problem], list_limit: tuple[str, int] | None):
        self.loader = loader
        self.file = file
        self.problems = problems
        self.list_limit = list_limit
        self.anchors: dict[str, Node] = {}
        self.open: set[int] = set()  # ids of the collections being read: an alias to one would make a cycle

    def err(self, mark: Any, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(message, self.file, mark.line + 1, mark.column + 1, hint))

    def compose(self) -> Node | None:
        get = self.loader.get_event
        get()  # StreamStartEvent
        event = get()
        if isinstance(event, yaml.StreamEndEvent):
            return None
        root: Node | None = None
        # each open collection: (node, pending mapping key: None, a key Node, or _SKIP)
        stack: list[list[Any]] = []
        limited: SeqNode | None = None  # the list that list_limit counts
        while True:
            event = get()
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                self.open.discard(id(stack.pop()[0]))
                if not stack:
                    break
                continue
            m = event.start_mark
            node: Node
            is_merge = False
            if isinstance(event, yaml.ScalarEvent):
                node, is_merge = self._scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                known = self.anchors.get(event.anchor or "")
                if known is None:
                    raise _RefusedError(
                        Problem(
                            f"invalid YAML: found undefined alias {event.anchor!r}",
                            self.file,
                            m.line + 1,
                            m.column + 1,
                            "define the anchor (&name) before using it (*name)",
                        )
                    )
                if id(known) in self.open:
                    raise _RefusedError(
                        Problem(
                            f"alias *{event.anchor} is inside its own anchor (a value containing itself)",
                            self.file,
                            m.line + 1,
                            m.column + 1,
                            "repeat the values instead",
                        )
                    )
                node = known
            else:  # a mapping or a list starts
                if len(stack) >= MAX_DEPTH:
                    raise _RefusedError(
                        Problem(
                            f"the file nests mappings and lists more than {MAX_DEPTH} levels deep",
                            self.file,
                            m.line + 1,
                            m.column + 1,
                            "a workflow needs only a few levels",
                        )
                    )
                is_map = isinstance(event, yaml.MappingStartEvent)
                node = MapNode({}, {}, m.line + 1, m.column + 1) if is_map else SeqNode([], m.line + 1, m.column + 1)
                expected = _MAP_TAG if is_map else _SEQ_TAG
                if event.tag not in (None, "!", expected):
                    self.err(m, f"unsupported YAML tag {event.tag!r}", hint="remove the tag")
            if event.anchor is not None and not isinstance(event, yaml.AliasEvent):
                self.anchors[event.anchor] = node
            if not stack:
                root = node
            else:
                frame = stack[-1]
                parent = frame[0]
                if isinstance(parent, SeqNode):
                    if parent is limited and self.list_limit and len(parent.value) >= self.list_limit[1]:
                        raise TooManyItemsError(self.list_limit[0], self.list_limit[1], m.line + 1, m.column + 1)
                    parent.value.append(node)
                elif frame[1] is None:
                    frame[1] = self._key(node, parent, m, is_merge)
                else:
                    key_node = frame[1]
                    frame[1] = None
                    if key_node is not _SKIP:
                        parent.keys[key_node.value] = key_node
                        parent.value[key_node.value] = node
                        if (
                            self.list_limit
                            and len(stack) == 1
                            and key_node.value == self.list_limit[0]
                            and isinstance(node, SeqNode)
                        ):
                            limited = node
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                stack.append([node, None])
                self.open.add(id(node))
            elif not stack:
                break
        get()  # DocumentEndEvent
        event = get()
        if not isinstance(event, yaml.StreamEndEvent):
            m = event.start_mark
            raise _RefusedError(
                Problem(
                    "invalid YAML: expected a single document in the stream, but found another document",
                    self.file,
                    m.line + 1,
                    m.column + 1,
                    "a workflow file holds one document: remove the `---` line and what follows",
                )
            )
        return root

    def _key(self, node: Node, parent: MapNode, m: Any, is_merge: bool) -> Any:
        """The key Node for the next value of `parent`, or _SKIP (with a problem) if it cannot be one."""
        if not isinstance(node, ScalarNode):
            self.err(m, "mapping keys must be plain scalars", hint="use a string as the key")
            return _SKIP
        if is_merge:
            self.err(m, "YAML merge keys ('<<') are not supported", hint="use `defaults:` for shared settings")
            return _SKIP
        first = parent.keys.get(node.value)
        if first is not None:
            self.err(
                m, f"duplicate key {shown(node.value)}", hint=f"first defined at line {first.line}, column {first.col}"
            )
            return _SKIP
        return node

    def _scalar(self, event: Any) -> tuple[ScalarNode, bool]:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        m = event.start_mark
        if tag == _MERGE_TAG:  # `<<`: refused as a key by the caller
            return ScalarNode(event.value, m.line + 1, m.column + 1), True
        ynode = yaml.ScalarNode(tag, event.value, m, event.end_mark, event.style)
        value: Any
        try:
            value = self.loader.construct_object(ynode, deep=True)
        except Exception as e:  # bad timestamps, unknown tags, '!!int x', numbers too long: all are input errors
            self.err(m, f"invalid value {shown(event.value)}: {_why(e)}", hint="quote the value to make it a string")
            value = event.value
        finally:
            self.loader.constructed_objects.pop(ynode, None)
        if tag == _INT_TAG and not event.style and _LEADING_ZERO.match(event.value):  # libyaml: style ""
            self.err(
                m,
                f"ambiguous number {event.value}: YAML 1.1 reads it as {_yaml11_reading(event.value)}, YAML 1.2 as "
                f"{int(event.value, 10)}",
                f'quote it to keep the text ("{event.value}"), or write the number without the leading zero',
            )
            value = event.value
        if not isinstance(value, SCALAR_TYPES):
            self.err(m, f"unsupported YAML value of type {type(value).__name__}", hint="use a string or a number")
            value = event.value
        return ScalarNode(value, m.line + 1, m.column + 1), False


def _yaml11_reading(text: str) -> str:
    try:
        return f"octal {int(text, 8)}"
    except ValueError:  # 08, 09: not octal digits, so YAML 1.1 reads a string
        return f'the text "{text}"'


def _why(e: Exception) -> str:
    if isinstance(e, ValueError) and "integer string conversion" in str(e):
        # Python refuses to read an integer of more than sys.get_int_max_str_digits() digits
        return f"a number of more than {sys.get_int_max_str_digits()} digits"
    return _first_line(e)


def _first_line(e: Exception) -> str:
    text = getattr(e, "problem", None) or str(e) or type(e).__name__
    return text.strip().splitlines()[0]


def plain_scalar(text: str) -> Any:
    """A command-line value (`--set K=V`) read as a YAML 1.2 plain scalar: "0.1" is a number, "true" a boolean,
    "1:00:00" and "yes" stay text; so does a number with a leading zero, which YAML versions read differently."""
    if text == "" or _LEADING_ZERO.match(text):
        return text
    try:
        # the same reader as workflow files: bounded nesting, a too-long number is a problem, not a ValueError
        node = parse_yaml(text, "--set")
    except InputError:
        return text
    value = node.value if isinstance(node, ScalarNode) else None
    return value if isinstance(value, (str, int, float, bool)) else text


# --- from Python data (the Python API) -----------------------------------------------------------------------------


def from_python(data: Any, path: str = "", file: str = "<python>") -> Node:
    """Build Nodes from plain Python data; each node's `path` says where it is (e.g. `allocations[2].walltime`).

    Raises InputError (at `file:path`) for what YAML could not hold either: objects of other types, a list or
    mapping that contains itself, nesting deeper than MAX_DEPTH, integers too long to write out. Paths (os.PathLike)
    become strings and ranges lists.
    """
    problems: list[Problem] = []
    node = _from_python(data, path, file, problems, set(), 0)
    if problems:
        raise InputError(problems)
    return node


def _from_python(data: Any, path: str, file: str, problems: list[Problem], active: set[int], depth: int) -> Node:
    def bad(message: str, hint: str | None = None) -> Node:
        problems.append(Problem(message, f"{file}:{path}" if path else file, hint=hint))
        return ScalarNode(None, None, None, path)

    container = isinstance(data, (Mapping, list, tuple, range))
    if container and id(data) in active:
        return bad(f"this {type(data).__name__} contains itself", "YAML has no such values: build it without the loop")
    if container and depth >= MAX_DEPTH:
        return bad(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(data, Mapping):
        active.add(id(data))
        node = MapNode({}, {}, None, None, path)
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if not isinstance(k, (str, int, float, bool)) or (isinstance(k, int) and not _writable_int(k)):
                where = f"{file}:{path}" if path else file
                problems.append(Problem(f"a mapping key of type {type(k).__name__}", where, hint="use strings"))
                continue
            node.keys[k] = ScalarNode(k, None, None, sub)
            node.value[k] = _from_python(v, sub, file, problems, active, depth + 1)
        active.discard(id(data))
        return node
    if isinstance(data, (list, tuple, range)):
        active.add(id(data))
        items = [_from_python(v, f"{path}[{i}]", file, problems, active, depth + 1) for i, v in enumerate(data)]
        active.discard(id(data))
        return SeqNode(items, None, None, path)
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if isinstance(data, int) and not _writable_int(data):
        return bad(f"an integer of {data.bit_length():,} bits is too long", "use a number of at most 4300 digits")
    if not isinstance(data, SCALAR_TYPES):
        return bad(
            f"unsupported value of type {type(data).__name__}",
            "use a string, number, boolean or None, or a list or dict of them",
        )
    return ScalarNode(data, None, None, path)


def _writable_int(value: int) -> bool:
    """Whether str() can write the integer (Python refuses more than sys.get_int_max_str_digits() digits)."""
    return value.bit_length() <= sys.get_int_max_str_digits() * 3  # 3 bits per digit: a safe lower bound
