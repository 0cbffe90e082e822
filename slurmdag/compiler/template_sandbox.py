"""Bounded evaluation of the `{{ params.x }}` templates in a workflow's entrypoint, env and setup. Pure.

A template is data from the workflow file, so a few bytes must not cost minutes or gigabytes: `{{ 7**(10**8) }}`,
`{{ 'x' * 400000000 }}`, nested loops, a list doubled in a loop then printed. Jinja2's immutable sandbox keeps
templates away from Python internals; on top of it, every operation that can make a value goes through a check:

- the arithmetic operators are intercepted: `**` and `*` are refused before they would make a number of more than
  MAX_INT_BITS bits or a text / list of more than MAX_CHARS items; every result is measured;
- list, tuple and dict literals, `~` joins, calls and filters: their results are measured (the size they would
  print as, counted with a budget, so a list holding itself many times over is caught without printing it), and
  the filters and string methods that multiply a size by an argument are checked before they run;
- every piece of output, also output captured by `{% set %}` blocks, macros and filter blocks, counts towards
  MAX_CHARS for the whole evaluation;
- loops and every hook above check a CPU-time deadline, so an empty nested loop is stopped too.

Loops, literals, `~` and output have no hook in Jinja2's generated code, so the parsed template is rewritten to
call one (`_sd_iter`, `_sd_value`, `_sd_out`) before it is compiled.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_CHARS = 1_000_000  # any text or list a template makes, and all of its output together
MAX_INT_BITS = 4096  # about 1,230 decimal digits
SECONDS_PER_TEXT = 1.0  # CPU time for one template
SECONDS_PER_WORKFLOW = 5.0  # CPU time for all the templates of one compile

# String methods a template may call; the others (expandtabs, translate, ...) can multiply a size unchecked.
_STR_METHODS = frozenset(
    """capitalize casefold center count endswith find format format_map index isalnum isalpha isascii isdecimal
    isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join ljust lower lstrip partition
    removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines startswith strip
    swapcase title upper zfill""".split()
)
# Filters with a number argument that sets a size (a width, a count of items).
_SIZE_FILTERS = frozenset({"batch", "center", "indent", "slice", "tojson", "truncate", "urlize", "wordwrap"})
_BUILTIN_TYPES = (str, bytes, bytearray, int, float, list, tuple, dict, set, frozenset)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_HOOKS = ("_sd_iter", "_sd_value", "_sd_out")


class TemplateLimitError(Exception):
    """A template asked for more work than the bounds allow (the message says which)."""


_OPEN_COMMENT_AT_END = re.compile(r"\{#[-+]?\s*\Z")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # n paragraphs of text: a size multiplier with nothing to check
        self.globals.update(_sd_iter=self._iter, _sd_value=self._value, _sd_out=self._out)
        for name, fn in list(self.filters.items()):
            self.filters[name] = self._guarded_filter(name, fn)
        self.deadline = float("inf")
        self.output = 0  # characters of output made in the current evaluation
        self.workflow_seconds_left = SECONDS_PER_WORKFLOW

    # --- evaluation ----------------------------------------------------------------------------------------------

    def render_bounded(self, text: str, **variables: Any) -> str:
        """Render `text`; raises TemplateLimitError past a bound, jinja2 errors for bad templates."""
        if self.workflow_seconds_left <= 0:
            raise TemplateLimitError(
                f"not evaluated: the workflow's templates already used {SECONDS_PER_WORKFLOW:g} s of CPU time"
            )
        if _OPEN_COMMENT_AT_END.search(text):
            # jinja2 drops a comment opened at the very end ("{#", "abc{# ") without a word; anywhere else an
            # unclosed comment is its "Missing end of comment tag"
            raise TemplateSyntaxError("Missing end of comment tag", text.count("\n") + 1)
        tree = _Hooks().visit(self.parse(text))
        tree.set_environment(self)
        template = self.from_string(tree)
        start = time.thread_time()
        self.deadline = start + min(SECONDS_PER_TEXT, self.workflow_seconds_left)
        self.output = 0
        try:
            return template.render(**variables)
        finally:
            self.workflow_seconds_left -= time.thread_time() - start
            self.deadline = float("inf")

    def tick(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateLimitError(f"evaluation takes more than {SECONDS_PER_TEXT:g} s of CPU time")

    # --- hooks called by the rewritten template ---------------------------------------------------------------

    def _iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.tick()
            yield item

    def _value(self, value: Any) -> Any:
        self.tick()
        _measure(value, self)
        return value

    def _out(self, value: Any) -> Any:
        self.tick()
        self.output += _measure(value, self)
        if self.output > MAX_CHARS:
            raise TemplateLimitError(f"the output would be more than {MAX_CHARS:,} characters")
        return value

    # --- the sandbox's own hooks ------------------------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        result = self.binop_table[operator](left, right)
        _measure(result, self)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if getattr(__obj, "__self__", None) is __self and getattr(__obj, "__func__", None) in _OWN:
            return __context.call(__obj, *args, **kwargs)
        __self.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, _BUILTIN_TYPES):  # a method: a number argument may be a size (ljust, to_bytes, ...)
            _check_arguments(args, kwargs)
        if isinstance(owner, str):
            args = _check_str_method(owner, __obj.__name__, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _measure(result, __self)
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.tick()
        _check_str_attribute(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.tick()
        if isinstance(argument, str):  # `text['upper']` falls back to the attribute
            _check_str_attribute(obj, argument)
        return super().getitem(obj, argument)

    def _guarded_filter(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        passes_context = getattr(fn, "jinja_pass_arg", None) is not None

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            own = list(args[1:] if passes_context else args)  # the value filtered, then the filter's arguments
            if name in _SIZE_FILTERS:
                _check_arguments(own[1:], kwargs)
            own = _check_filter(name, own, kwargs)
            result = fn(*(args[:1] if passes_context else ()), *own, **kwargs)
            _measure(result, self)
            return result

        return guarded


_OWN = frozenset({BoundedEnvironment._iter, BoundedEnvironment._value, BoundedEnvironment._out})


class _Hooks(NodeTransformer):
    """Rewrite a parsed template so loops, literals, `~` and output call the environment's checks."""

    def _wrap(self, hook: str, node: nodes.Node) -> nodes.Expr:
        call = nodes.Call(nodes.Name(hook, "load"), [node], [], None, None)
        call.set_lineno(node.lineno)
        return call

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap("_sd_iter", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [self._wrap("_sd_out", child) for child in node.nodes]
        return node

    def _value(self, node: nodes.Expr) -> nodes.Expr:
        self.generic_visit(node)
        return self._wrap("_sd_value", node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._value(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._value(node)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        return self._value(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":  # a loop or assignment target
            return self.generic_visit(node)
        return self._value(node)

    def visit_Name(self, node: nodes.Name) -> nodes.Node:
        if node.name in _HOOKS and node.ctx == "store":
            raise TemplateLimitError(f"the name {node.name!r} is reserved")
        return node


# --- checks ------------------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, bytearray, list, tuple))


def _check_str_attribute(obj: Any, attribute: str) -> None:
    if not isinstance(obj, str) or attribute.startswith("_") or not hasattr(str, attribute):
        return
    if attribute not in _STR_METHODS:
        raise TemplateLimitError(f"the string method {attribute!r} is not available in templates")
    if attribute in ("format", "format_map"):
        _check_brace_format(obj)


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        bits = exponent * (abs(base).bit_length() - 1)
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(f"`**` would make a number of more than {MAX_INT_BITS} bits")


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise TemplateLimitError(f"`*` would make a number of more than {MAX_INT_BITS} bits")
        return
    for seq, count in ((left, right), (right, left)):
        if _sized(seq) and _is_int(count) and len(seq) * count > MAX_CHARS:
            raise TemplateLimitError(f"`*` would make {len(seq) * count:,} items, more than {MAX_CHARS:,}")


def _check_percent_format(fmt: str) -> None:
    for width, precision in _PERCENT_FIELD.findall(fmt):
        for n in (width, precision):
            if n == "*" or (n and int(n) > MAX_CHARS):
                raise TemplateLimitError("a `%` format width must be a number up to 1,000,000")


def _check_brace_format(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # format() itself reports it
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or any(int(n) > MAX_CHARS for n in re.findall(r"\d+", spec))):
            raise TemplateLimitError("a `format` width must be a number up to 1,000,000")


def _check_arguments(args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _is_int(value) and abs(value) > MAX_CHARS:
            raise TemplateLimitError(f"a number argument of more than {MAX_CHARS:,} is not accepted in templates")


def _listed(value: Any) -> list[Any]:
    """An iterable as a list of at most MAX_CHARS items."""
    out = []
    for item in value:
        out.append(item)
        if len(out) > MAX_CHARS:
            raise TemplateLimitError(f"more than {MAX_CHARS:,} items")
    return out


def _check_replace(text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        if len(text) + hits * max(0, len(new) - len(old)) > MAX_CHARS:
            raise TemplateLimitError(f"`replace` would make more than {MAX_CHARS:,} characters")


def _check_join(sep: Any, items: list[Any]) -> None:
    size = len(str(sep)) * max(0, len(items) - 1) + sum(len(x) if isinstance(x, str) else 16 for x in items)
    if size > MAX_CHARS:
        raise TemplateLimitError(f"`join` would make more than {MAX_CHARS:,} characters")


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "join" and args:
        items = _listed(args[0])
        _check_join(text, items)
        return (items, *args[1:])
    return args


def _check_filter(name: str, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Size checks for the filters whose output can be much larger than their input; returns the arguments (an
    iterable to join is read into a list first)."""
    value = args[0] if args else None
    if name == "replace" and len(args) >= 3:
        _check_replace(str(value), args[1], args[2])
    elif name == "join" and value is not None:
        items = _listed(value)
        _check_join(args[1] if len(args) > 1 else kwargs.get("d", ""), items)
        return [items, *args[1:]]
    elif name == "indent":
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else width if _is_int(width) else 4
        text = str(value)
        if len(text) + (text.count("\n") + 1) * pad > MAX_CHARS:
            raise TemplateLimitError(f"`indent` would make more than {MAX_CHARS:,} characters")
    elif name == "wordwrap":
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring")
        if isinstance(wrap, str) and len(str(value)) * (len(wrap) + 1) > MAX_CHARS:
            raise TemplateLimitError(f"`wordwrap` would make more than {MAX_CHARS:,} characters")
    elif name == "format" and isinstance(value, str):
        _check_percent_format(value)
    elif name == "sum":
        start = args[2] if len(args) > 2 else kwargs.get("start", 0)
        if not isinstance(start, (int, float)):
            raise TemplateLimitError("`sum` adds numbers only in templates")
    elif name == "tojson":
        indent = args[1] if len(args) > 1 else kwargs.get("indent")
        if indent is not None and not (_is_int(indent) and 0 <= indent <= 8):
            raise TemplateLimitError("`tojson` takes an indent of at most 8 in templates")
    return args


def _measure(value: Any, env: BoundedEnvironment) -> int:
    """About how many characters `value` prints as; TemplateLimitError past MAX_CHARS. Work stays within
    MAX_CHARS steps however much a nested list repeats itself."""
    if isinstance(value, (str, bytes, bytearray)):
        size = len(value)
        if size > MAX_CHARS:
            raise TemplateLimitError(f"a text of {size:,} characters, more than {MAX_CHARS:,}")
        return size
    if _is_int(value):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(f"a number of more than {MAX_INT_BITS} bits")
        return 8
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return 8
    size = 0
    steps = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        steps += 1
        if steps % 4096 == 0:
            env.tick()
        if isinstance(item, str):
            size += len(item) + 4
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            size += 2 + 3 * len(item)  # every item is printed with at least a separator
        else:
            size += 8
        if size > MAX_CHARS:  # checked before the items are stacked: the stack stays below MAX_CHARS too
            raise TemplateLimitError(f"a value that would print as more than {MAX_CHARS:,} characters")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return size
