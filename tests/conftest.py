"""Test-suite wide plumbing: auto-markers only (nothing cluster-related here).

Tests under tests/unit get the ``unit`` marker, tests under tests/integration the
``integration`` marker, tests under tests/packaging the ``packaging`` marker (they install packages), so
``pytest -m unit`` / ``pytest tests/unit`` need no Slurm.

Tests that stop Slurm's daemons or restart the test cluster with other knobs (markers ``stops_daemons`` and
``restarts_cluster``) run last, in their collected order: every other test of the run has finished by then, so none
of them sees a stopped controller or a shrunken job table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
_RUN_LAST = ("stops_daemons", "restarts_cluster")
_MARKS = {"unit": _TESTS / "unit", "integration": _TESTS / "integration", "packaging": _TESTS / "packaging"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        for mark, folder in _MARKS.items():
            if folder == path or folder in path.parents:
                item.add_marker(getattr(pytest.mark, mark))
    # A stable sort keeps the collected order within both parts.
    items.sort(key=lambda item: any(item.get_closest_marker(m) for m in _RUN_LAST))
