"""slurmdag: turn a workflow DAG into native Slurm dependency chains, submitted all at once.

The Python API is re-exported here, so that `from slurmdag import Workflow` keeps working whatever the layout inside;
it is imported lazily so the command line does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from slurmdag.compiler.api import Allocation, Workflow
    from slurmdag.compiler.compile import compile_file, compile_text, parse_overrides
    from slurmdag.model.errors import InputError, SlurmdagError
    from slurmdag.model.plan import Plan

_PUBLIC = {
    "Workflow": "slurmdag.compiler.api",
    "Allocation": "slurmdag.compiler.api",
    "compile_file": "slurmdag.compiler.compile",
    "compile_text": "slurmdag.compiler.compile",
    "parse_overrides": "slurmdag.compiler.compile",
    "Plan": "slurmdag.model.plan",
    "InputError": "slurmdag.model.errors",
    "SlurmdagError": "slurmdag.model.errors",
}
__all__ = [
    "Allocation",
    "InputError",
    "Plan",
    "SlurmdagError",
    "Workflow",
    "__version__",
    "compile_file",
    "compile_text",
    "parse_overrides",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'slurmdag' has no attribute {name!r}")
