"""`slurmdag-output NAME [VALUE]`: publish VALUE (or standard input) as output NAME of the current job.

The console script installed with slurmdag. Inside a DAG's job, `$SLURMDAG_RUN_DIR/bin/slurmdag-output` (a POSIX sh
twin written at submit, model/run_layout.py) comes first on the PATH, so a node without slurmdag installed works
too; both write the same file the same way (docs/passing-data.md).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from slurmdag.model import run_layout

USAGE = "usage: slurmdag-output NAME [VALUE]   (without VALUE the value is read from standard input)"


def publish(outputs: str | os.PathLike[str], name: str, value: bytes) -> Path:
    """Write `value` as output `name` into the outputs folder `outputs`, atomically (temporary file + rename)."""
    folder = Path(outputs)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(value)
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    name = args[0]
    if not run_layout.OUTPUT_NAME_RE.match(name):
        sys.stderr.write(f"slurmdag-output: invalid output name {name!r}: {run_layout.OUTPUT_NAME_HINT}\n")
        return 2
    outputs = os.environ.get(run_layout.ENV_OUTPUTS)
    if not outputs:
        sys.stderr.write(
            f"slurmdag-output: {run_layout.ENV_OUTPUTS} is not set: run it inside a job of a slurmdag DAG\n"
        )
        return 2
    value = os.fsencode(args[1]) if len(args) == 2 else sys.stdin.buffer.read()
    try:
        publish(outputs, name, value)
    except OSError as e:
        sys.stderr.write(f"slurmdag-output: cannot write {name} into {outputs}: {e.strerror or e}\n")
        return 1
    return 0


def run() -> None:
    sys.exit(main())
