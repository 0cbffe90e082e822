"""What `status --watch`, `watch` and `submit --watch` show while a DAG runs. Pure: renderables and lines out.

On a terminal: one rich renderable (a coloured one-line summary, then the table or tree), redrawn in place by the
CLI. Through a pipe: plain, append-only lines, one per change, so a log file reads as a history.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from slurmdag.model.states import AllocationState, DagState
from slurmdag.runs.status import AllocationStatus, DagStatus
from slurmdag.views.status_views import status_tree

STATE_STYLES = {
    AllocationState.PENDING: "yellow",
    AllocationState.RUNNING: "cyan",
    AllocationState.COMPLETED: "green",
    AllocationState.FAILED: "bold red",
    AllocationState.TIMEOUT: "bold red",
    AllocationState.OUT_OF_MEMORY: "bold red",
    AllocationState.NODE_FAIL: "bold red",
    AllocationState.CANCELLED: "magenta",
    AllocationState.SKIPPED: "dim",
    AllocationState.UNKNOWN: "bold yellow",
}
DAG_STYLES = {
    DagState.PENDING: "yellow",
    DagState.RUNNING: "cyan",
    DagState.COMPLETED: "bold green",
    DagState.FAILED: "bold red",
    DagState.CANCELLED: "magenta",
    DagState.UNKNOWN: "bold yellow",
}
# When the table is taller than the terminal, finished rows give way first (a redraw taller than the screen
# cannot be redrawn in place).
_QUIET = (AllocationState.COMPLETED, AllocationState.SKIPPED)


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def summary_text(status: DagStatus, clock: str) -> Text:
    """`DAG id (name): State  3 Completed · 1 Running · 2 Pending   12:03:01`, states in colour."""
    text = Text.assemble("DAG ", (status.dag_id, "bold"), f" ({status.name}): ", (str(status.state), _dag(status)))
    if status.attempts > 1:
        text.append(f"  attempt {status.attempt} of {status.attempts}")
    text.append("  ")
    for i, (state, n) in enumerate(status.counts().items()):
        if i:
            text.append(" · ", style="dim")
        text.append(f"{n} {state}", style=STATE_STYLES.get(AllocationState(state), ""))
    text.append(f"   {clock}", style="dim")
    return text


def _dag(status: DagStatus) -> str:
    return DAG_STYLES.get(status.state, "")


def _state_cell(node: AllocationStatus) -> Text:
    text = Text(str(node.state), style=STATE_STYLES.get(node.state, ""))
    if node.tasks is not None:
        counts = node.task_counts()
        text.append(" (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")", style="dim")
    elif node.retry is not None:
        text.append(f" ({node.retry.text()})", style="dim")
    return text


def live_renderable(status: DagStatus, clock: str, graph: bool = False, height: int | None = None) -> RenderableType:
    """The whole live view; `height` (the terminal's) bounds the number of table rows."""
    parts: list[RenderableType] = [summary_text(status, clock)]
    if graph:
        tree = status_tree(status).split("\n", 1)
        parts.append(Text(tree[1] if len(tree) > 1 else ""))
    else:
        parts.append(_table(status, height))
    parts += [Text(f"note: {n}", style="dim") for n in status.notes]
    return Group(*parts)


def _table(status: DagStatus, height: int | None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("ALLOCATION", "STATE", "JOB ID", "ELAPSED", "EXIT", "REASON"):
        table.add_column(column, no_wrap=column != "REASON", overflow="ellipsis")
    nodes = status.allocations()
    room = max(3, height - 6 - len(status.notes)) if height else None
    hidden = 0
    if room is not None and len(nodes) > room:
        busy = [n for n in nodes if n.state not in _QUIET]
        shown = busy[:room]
        hidden = len(nodes) - len(shown)
        nodes = [n for n in nodes if n in shown]
    for node in nodes:
        elapsed = "-" if node.tasks is not None else _dash(node.elapsed)
        table.add_row(
            node.name, _state_cell(node), _dash(node.job_id), elapsed, _dash(node.exit_code), _dash(node.reason)
        )
    if hidden:
        table.add_row(Text(f"... {hidden} more (finished ones first)", style="dim"), "", "", "", "", "")
    return table


# --- through a pipe ---


def change_lines(previous: DagStatus | None, status: DagStatus, clock: str) -> list[str]:
    """Plain lines for what changed since `previous` (everything the first time): the DAG, then each allocation."""
    lines = []
    before = {n.name: n for n in previous.allocations()} if previous else {}
    counts = ", ".join(f"{n} {s}" for s, n in status.counts().items())
    if previous is None or (previous.state, previous.counts()) != (status.state, status.counts()):
        lines.append(f"{clock} DAG {status.dag_id} ({status.name}): {status.state}  [{counts}]")
    for node in status.allocations():
        old = before.get(node.name)
        now = _plain_state(node)
        if old is None or _plain_state(old) != now:
            lines.append(f"{clock}   {node.name}: {now}" + (f"  #{node.job_id}" if node.job_id else ""))
    return lines


def _plain_state(node: AllocationStatus) -> str:
    if node.tasks is not None:
        return f"{node.state} (" + ", ".join(f"{n} {s}" for s, n in node.task_counts().items()) + ")"
    return str(node.state)
