"""Test-suite wide plumbing: auto-markers only (nothing cluster-related here).

Tests under tests/unit get the ``unit`` marker, tests under tests/integration the
``integration`` marker, tests under tests/packaging the ``packaging`` marker (they install packages), so
``pytest -m unit`` / ``pytest tests/unit`` need no Slurm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
_MARKS = {"unit": _TESTS / "unit", "integration": _TESTS / "integration", "packaging": _TESTS / "packaging"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        for mark, folder in _MARKS.items():
            if folder == path or folder in path.parents:
                item.add_marker(getattr(pytest.mark, mark))
