"""Shared helpers for the unit tests of the pure core."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from slurmdag.model.errors import InputError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problem_lines(err: InputError) -> list[str]:
    """`file:line:col: message` of every problem, without hints."""
    return [f"{p.location()}: {p.message}" for p in err.problems]


@pytest.fixture
def write(tmp_path):
    """write(text, name="wf.yaml") -> path of a file holding the dedented text."""

    def _write(text: str, name: str = "wf.yaml") -> Path:
        path = tmp_path / name
        path.write_text(dedent(text), encoding="utf-8")
        return path

    return _write


@pytest.fixture(autouse=True)
def _cli_backend(monkeypatch):
    """Unit tests drive the CLI backend (a fake Slurm replaces the commands): never pyslurm, even where it is
    installed (with `auto` its probe would run through the fake)."""
    monkeypatch.setenv("SLURMDAG_BACKEND", "cli")
