"""Read a batch script's `#SBATCH` block the way sbatch 22.05 does. Pure: text in, data out.

sbatch's rules (man sbatch, DESCRIPTION, and its option reader):
- only lines that *start* with `#SBATCH` (column 1, case-sensitive) are directives; an indented `#SBATCH` is a comment;
- directives are read until the first line that is neither blank nor a comment (the first command); `#SBATCH`
  lines after it are ignored by sbatch, so we report them instead of applying them;
- a line may hold several options; words split on unquoted whitespace, `'` and `"` quote, `\\` escapes the next
  character, an unquoted `#` starts a comment that ends the line;
- all directive words form one argument list read like a command line (getopt_long): `-N2`, `-N 2`, `--nodes=2`,
  `--nodes 2`, unambiguous long prefixes; a word that is not an option is an error ("Invalid directive").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from slurmdag.model.errors import Problem
from slurmdag.model.sbatch_options import CLIENT_ONLY, OWNED, OWNED_POLICY, ParsedOption, Token, parse_args

MAGIC = "#SBATCH"
_SPECIAL = re.compile(r"[\\\"'#]")  # what makes a directive line need the full reader below
_WORD = re.compile(r"[^\s]+")


@dataclass
class ScriptDirectives:
    """What a batch script asks of Slurm, with positions, plus its body as written."""

    path: str
    directives: list[ParsedOption]  # every option of the leading block, in order, owned ones included
    body: str  # verbatim, from the first command line to the end of the file ("" when there is none)
    body_line: int | None  # 1-based line where `body` starts
    shebang: str | None  # the `#!` line, without its newline
    problems: list[Problem] = field(default_factory=list)  # sbatch would refuse it, or slurmdag cannot honour it
    notes: list[Problem] = field(default_factory=list)  # worth telling the user; nothing is lost silently

    def effective(self) -> dict[str, str | None]:
        """The value sbatch ends up with per option (the last occurrence wins), every known option."""
        out: dict[str, str | None] = {}
        for d in self.directives:
            if d.known:
                out.pop(d.name, None)  # keep the order of the winning occurrence
                out[d.name] = d.value
        return out

    def options(self) -> dict[str, str | None]:
        """Options slurmdag passes on for this script: not owned by slurmdag, not sbatch-client-only; options the
        22.05 table does not know are passed on too (newer Slurm, site plugins: the cluster's sbatch decides)."""
        out = {k: v for k, v in self.effective().items() if k not in OWNED and k not in CLIENT_ONLY}
        for d in self.directives:
            if not d.known:
                out.pop(d.name, None)
                out[d.name] = d.value
        return out

    def owned(self) -> dict[str, str | None]:
        return {k: v for k, v in self.effective().items() if k in OWNED}

    @property
    def array(self) -> str | None:
        return self.effective().get("array")

    @property
    def job_name(self) -> str | None:
        return self.effective().get("job-name")


def split_directive_words(text: str, line: int, start_col: int) -> tuple[list[Token], str | None]:
    """Words of one directive line's argument part; returns (tokens, error message or None).

    `start_col` is the 1-based column of text[0] in the file's line.
    """
    if not _SPECIAL.search(text):  # no quote, escape or comment (every line slurmdag writes): plain words
        return [Token(m.group(), line, start_col + m.start()) for m in _WORD.finditer(text)], None
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] == "#":
            return tokens, None
        begin = i
        word: list[str] = []
        quote: str | None = None
        escaped = False
        while i < n:
            c = text[i]
            if escaped:
                word.append(c)
                escaped = False
            elif c == "\\":
                escaped = True
            elif quote:
                if c == quote:
                    quote = None
                else:
                    word.append(c)
            elif c in "\"'":
                quote = c
            elif c.isspace():
                break
            elif c == "#":
                # an unquoted '#' ends the word and the rest of the line is a comment
                tokens.append(Token("".join(word), line, start_col + begin))
                return tokens, None
            else:
                word.append(c)
            i += 1
        if quote:
            return tokens, f"unmatched {quote} in #SBATCH line"
        tokens.append(Token("".join(word), line, start_col + begin))


def leading_block(lines: Iterable[str], path: str) -> tuple[list[Token], list[Problem], int | None]:
    """The words of every #SBATCH line before the first command, problems reading them, and the index of that
    command's line (None when there is none). `lines` may be lazy: nothing after the first command is read."""
    tokens: list[Token] = []
    problems: list[Problem] = []
    for idx, raw in enumerate(lines):
        lineno = idx + 1
        line = raw.rstrip("\r")
        if line.startswith(MAGIC):
            words, err = split_directive_words(line[len(MAGIC) :], lineno, len(MAGIC) + 1)
            if err:
                problems.append(Problem(err, path, lineno, 1, "close the quote or escape it with \\"))
            if any(w.text.lower() in ("hetjob", "packjob") for w in words):
                problems.append(Problem("heterogeneous job separators are not supported", path, lineno, 1))
                words = [w for w in words if w.text.lower() not in ("hetjob", "packjob")]
            tokens.extend(words)
            continue
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return tokens, problems, idx
    return tokens, problems, None


def iter_lines(text: str) -> Iterator[str]:
    """The lines of `text` one at a time (no copy of the whole text, unlike split)."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start:end]
        start = end + 1


UNKNOWN_HINT = (
    "kept; validate and submit check it against your cluster's `sbatch --help` (refused there if sbatch does not "
    "know it)"
)


def read_directives(text: str, path: str = "<script>", owned_policy: bool = True) -> ScriptDirectives:
    """`owned_policy=False` reads the script as sbatch does: options slurmdag sets itself are no problem there
    (the gate's own `#SBATCH --hold`), only what sbatch refuses (`--wrap` in a script) still is."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    if "\r\n" in text:
        problems.append(
            Problem(
                "batch script has DOS line breaks (\\r\\n); sbatch refuses it", path, 1, 1, "convert it with dos2unix"
            )
        )
    lines = text.split("\n")
    shebang = lines[0] if lines and lines[0].startswith("#!") else None
    if shebang is None:
        problems.append(
            Problem(
                "the first line of a batch script must start with #! and an interpreter",
                path,
                1,
                1,
                "add e.g. #!/bin/bash as the first line",
            )
        )
    tokens, block_problems, body_index = leading_block(lines, path)
    problems.extend(block_problems)
    body = "\n".join(lines[body_index:]) if body_index is not None else ""
    body_line = body_index + 1 if body_index is not None else None

    opts, operands, issues = parse_args(tokens, stop_at_operand=False)
    for iss in issues:
        if iss.unknown:  # newer than the table, or a site plugin's: kept; the cluster's sbatch decides
            notes.append(
                Problem(f"{iss.message} (not in sbatch 22.05's options)", path, iss.line, iss.col, UNKNOWN_HINT)
            )
        else:
            problems.append(Problem(iss.message, path, iss.line, iss.col, iss.hint))
    for op in operands:
        problems.append(Problem(f"invalid directive {op.text!r}: not an option", path, op.line, op.col))

    for d in opts:
        if d.name in OWNED_POLICY:
            if not owned_policy and d.name != "wrap":
                continue
            severity, hint = OWNED_POLICY[d.name]
            written = f"--{d.name}" if d.value is None else f"--{d.name}={d.value}"
            msg = f"{written}: this option is set by slurmdag"
            (problems if severity == "error" else notes).append(Problem(msg, path, d.line, d.col, hint))
        elif d.name in CLIENT_ONLY:
            notes.append(Problem(f"--{d.name} only affects the sbatch command; not applied", path, d.line, d.col))

    if not any(d.name == "ignore-pbs" for d in opts):
        # sbatch also applies #PBS lines of the leading block (-N, -l walltime=...); a compiled script has none
        for idx in range(1, body_index if body_index is not None else len(lines)):
            if lines[idx].startswith("#PBS"):
                notes.append(
                    Problem(
                        "#PBS directive: sbatch applies it too, slurmdag does not; not carried over",
                        path,
                        idx + 1,
                        1,
                        "write it as an #SBATCH option (or add #SBATCH --ignore-pbs if it is not meant for Slurm)",
                    )
                )

    if body_index is not None:
        for idx in range(body_index + 1, len(lines)):
            if lines[idx].startswith(MAGIC):
                notes.append(
                    Problem(
                        "#SBATCH after the first command: sbatch ignores it, and so does slurmdag",
                        path,
                        idx + 1,
                        1,
                        f"move it above line {body_line} if it is meant to apply",
                    )
                )
    return ScriptDirectives(path, opts, body, body_line, shebang, problems, notes)


# Interpreters slurmdag can prepend its shell lines (env, setup, matrix) to: full bash, or plain POSIX sh code.
BASH_SHELLS = frozenset({"bash"})
POSIX_SHELLS = frozenset({"sh", "dash", "ash", "ksh", "mksh", "zsh", "busybox"})


def interpreter(shebang: str | None) -> str | None:
    """The program a `#!` line runs, by base name: `#!/usr/bin/env -S python3 -u` -> `python3`."""
    if not shebang or not shebang.startswith("#!"):
        return None
    words = shebang[2:].split()
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return words[0].rsplit("/", 1)[-1] if words else None


def shell_kind(shebang: str | None) -> str:
    """ "bash", "sh" (POSIX shell code only) or "none" (not a shell: slurmdag adds no code to the script)."""
    name = interpreter(shebang)
    if name in BASH_SHELLS:
        return "bash"
    if name in POSIX_SHELLS:
        return "sh"
    return "none"


def read_script_file(path: str, owned_policy: bool = True) -> ScriptDirectives:
    """Read a batch script from disk (the only I/O here). Raises OSError / UnicodeDecodeError for the caller."""
    with open(path, encoding="utf-8", newline="") as fh:
        return read_directives(fh.read(), path, owned_policy)
