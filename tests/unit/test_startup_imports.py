"""Start-up cost of a command: what the process imports before it does anything (docs/performance.md, "Start-up").

typer 0.29 converts every command-line value through pydantic, and importing pydantic alone costs 0.12-0.14 s on the
CI machine, at the start of every command; pyproject.toml caps typer below it. This test runs real commands in a
fresh interpreter (so nothing imported by the test session counts) and fails if one of them imports pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "demo.yaml"

# The child reports, as it exits, which of these modules it imported.
_PROBE = """
import atexit, sys
atexit.register(lambda: print("imported:", sorted(m for m in ("pydantic", "pydantic_core") if m in sys.modules),
                              file=sys.__stderr__))
from slurmdag.cli import main
sys.argv = ["slurmdag", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", str(EXAMPLE)],  # a path argument, converted by typer
        ["compile", str(EXAMPLE), "--set", "greeting=hi", "-o", "{out}"],  # options with values, a list option
        ["--version"],
    ],
)
def test_a_command_does_not_import_pydantic(args, tmp_path):
    args = [a.replace("{out}", str(tmp_path / "out")) for a in args]
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=REPO, timeout=60)
    report = [line for line in proc.stderr.splitlines() if line.startswith("imported:")]
    assert proc.returncode == 0, proc.stderr  # the command did its work (its values were converted)
    assert report, proc.stderr
    assert report[-1] == "imported: []", f"{args}: {report[-1]} (typer >= 0.29? pyproject.toml caps it)"
