"""docs/compatibility.md: every test its table names exists under that name, so a renamed test cannot leave a row
backed by nothing. A reference is `file.py::function` (or `::function` for the file named just before it in the same
cell) or a whole `file.py`; fixtures count as functions."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "compatibility.md"
_REF = re.compile(r"`((?:[\w/]+\.py)?)(?:::(\w+))?`")


def _rows() -> list[tuple[str, str]]:
    """(row number, last cell) of each row of the differences table."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = line.split("|")
        if len(cells) == 10 and cells[1].strip().isdigit():
            rows.append((cells[1].strip(), cells[8]))
    return rows


def _test_file(name: str) -> Path:
    found = [p for p in (REPO / "tests").rglob(Path(name).name) if p.as_posix().endswith(name)]
    assert len(found) == 1, f"{name}: {found or 'no such file under tests/'}"
    return found[0]


def test_the_table_has_every_row_and_each_names_a_test():
    rows = _rows()
    assert [n for n, _ in rows] == [str(i) for i in range(1, len(rows) + 1)] and len(rows) >= 14, rows
    for number, cell in rows:
        assert "test" in cell or re.fullmatch(r"\s*as row \d+\s*", cell), f"row {number} names no test: {cell}"


def test_every_test_the_table_names_exists_under_that_name():
    problems = []
    checked = 0
    for number, cell in _rows():
        current: Path | None = None
        for file, function in _REF.findall(cell):
            if not file and not function:
                continue
            if file:
                try:
                    current = _test_file(file)
                except AssertionError as ex:
                    problems.append(f"row {number}: {ex}")
                    continue
            if function:
                if current is None:
                    problems.append(f"row {number}: ::{function} without a file before it")
                elif not re.search(rf"^\s*def {function}\(", current.read_text(), re.M):
                    problems.append(f"row {number}: {current.relative_to(REPO)} has no {function}")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 15, checked  # the references were found at all
