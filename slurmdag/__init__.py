"""slurmdag: turn a workflow DAG into native Slurm dependency chains, submitted all at once.

The Python API is re-exported here, so that `from slurmdag import Workflow` keeps working whatever the layout inside;
it is imported lazily so the command line does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from slurmdag.compiler.api import Allocation, Step
    from slurmdag.compiler.compile import compile_file, compile_text, parse_overrides
    from slurmdag.model.errors import DagFailedError, InputError, ResultNotFoundError, SlurmdagError, StepFailure
    from slurmdag.model.plan import Plan
    from slurmdag.runs.dag_handle import DagHandle
    from slurmdag.runs.python_submit import Workflow

_PUBLIC = {
    # The builder lives in compiler/api.py; runs/python_submit.py adds `submit()` to it.
    "Workflow": "slurmdag.runs.python_submit",
    "Allocation": "slurmdag.compiler.api",
    "Step": "slurmdag.compiler.api",
    "DagHandle": "slurmdag.runs.dag_handle",
    "DagFailedError": "slurmdag.model.errors",
    "ResultNotFoundError": "slurmdag.model.errors",
    "StepFailure": "slurmdag.model.errors",
    "compile_file": "slurmdag.compiler.compile",
    "compile_text": "slurmdag.compiler.compile",
    "parse_overrides": "slurmdag.compiler.compile",
    "Plan": "slurmdag.model.plan",
    "InputError": "slurmdag.model.errors",
    "SlurmdagError": "slurmdag.model.errors",
}
__all__ = [
    "Allocation",
    "DagFailedError",
    "DagHandle",
    "InputError",
    "Plan",
    "ResultNotFoundError",
    "SlurmdagError",
    "Step",
    "StepFailure",
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
