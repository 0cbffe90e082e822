"""Naming a DAG without its id: `@` is your newest DAG, `@~1` the one before it, and so on (gflow's `@`).

Newest means latest created in your local store, whatever its state. Accepted wherever a DAG id is.
"""

from __future__ import annotations

import re

from slurmdag.model.errors import Problem, UsageError
from slurmdag.state.store import Store

_REF = re.compile(r"\A@(?:~([0-9]{1,6}))?\Z")
REF_HELP = "@ is your newest DAG, @~1 the one before"


def is_ref(text: str) -> bool:
    return bool(_REF.match(text))


def resolve(store: Store, text: str) -> str:
    """The DAG id `text` names: itself, or the id `@`/`@~N` stands for (UsageError if there is no such DAG)."""
    m = _REF.match(text)
    if m is None:
        return text
    back = int(m.group(1) or 0)
    records = store.list_records()  # newest first
    if not records:
        raise UsageError(
            Problem("you have no DAGs yet", file="slurmdag", hint="submit one: `slurmdag submit WORKFLOW.yaml`")
        )
    if back >= len(records):
        raise UsageError(
            Problem(
                f"{text!r}: there are only {len(records)} DAG(s) in your store",
                file="slurmdag",
                hint=f"@~{len(records) - 1} is the oldest; `slurmdag list --all` shows them",
            )
        )
    return records[back].dag_id
