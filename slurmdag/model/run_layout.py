"""Where a DAG's jobs keep what they hand to each other: the run folder's layout, in one place. Pure.

Every job of a submitted DAG knows where it is (docs/passing-data.md):

    SLURMDAG_DAG_ID      the DAG's id
    SLURMDAG_ALLOCATION  the allocation's name
    SLURMDAG_RUN_DIR     the DAG's run folder, on the submit side's filesystem (which the cluster shares):
                         <store>/dags/<id>/run, or <DIR>/<id>/run when the DAG's logs go to `submit --log-dir DIR`
                         (or $SLURMDAG_LOG_DIR)
    SLURMDAG_OUTPUTS     this job's outputs folder: $SLURMDAG_RUN_DIR/outputs/<allocation>, and
                         .../outputs/<allocation>/<task index> for each task of a task group

Inside the run folder:

    outputs/<allocation>[/<task>]/<NAME>   a published output (`slurmdag-output NAME VALUE`): the value's bytes
    outputs/<allocation>[/<task>]/.result.json / .result.pickle
                                           the return value of a Python step (runs/pystep.py writes them in the
                                           job; `slurmdag outputs` shows .result.json as JSON)
    outputs/<allocation>[/<task>]/.exception.json / .exception.pickle
                                           what a Python step raised: type, message, traceback / the exception
    python/<step>.call.pickle / <step>.spec.json
                                           a Python step's function and arguments (cloudpickle) and where its
                                           parents' results are; written by `submit` before any job starts
    bin/slurmdag-output                    the helper the jobs find first on their PATH

The compiler knows no DAG id nor run folder (it runs before either exists): a compiled script sets its location
with the line `location_line()` returns, and `submit` replaces that line with the DAG's (`bound_location_line`).
The script then derives SLURMDAG_OUTPUTS from SLURMDAG_RUN_DIR in shell, so nothing else in it changes.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path, PurePath

RUN_DIR_NAME = "run"  # under the DAG's folder (<store>/dags/<id>/ or <log base>/<id>/)
OUTPUTS_DIR_NAME = "outputs"
BIN_DIR_NAME = "bin"
OUTPUT_HELPER = "slurmdag-output"

# Files of an outputs folder that are not outputs a user named: a Python step's return value, or its exception.
# runs/pystep.py (run by path in the job, importing nothing of slurmdag) repeats these names; a unit test checks.
RESULT_JSON = ".result.json"
RESULT_PICKLE = ".result.pickle"
EXCEPTION_JSON = ".exception.json"
EXCEPTION_PICKLE = ".exception.pickle"
PYTHON_DIR_NAME = "python"  # Python steps' calls and specs
# In the run folder: the name of the allocation whose `stop_if` held (it then stopped the DAG early).
STOPPED_EARLY = "stopped-early"

ENV_DAG_ID = "SLURMDAG_DAG_ID"
ENV_ALLOCATION = "SLURMDAG_ALLOCATION"
ENV_RUN_DIR = "SLURMDAG_RUN_DIR"
ENV_OUTPUTS = "SLURMDAG_OUTPUTS"
ENV_TASK_INDEX = "SLURMDAG_TASK_INDEX"

# An output's name is a file name and a template attribute (`{{ outputs.search.best_lr }}`): an identifier.
OUTPUT_NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,63}\Z")
OUTPUT_NAME_HINT = "output names are 1-64 characters: letters, digits and '_', starting with a letter"

# The one line of a rendered script that says where the job is; `submit` rewrites it (see `bind_location`).
LOCATION_PREFIX = f"export {ENV_DAG_ID}="
# A compiled script submitted by hand (no DAG): its run folder is `slurmdag-run` in the folder sbatch ran in.
UNBOUND_RUN_DIR = '"${SLURM_SUBMIT_DIR:-$PWD}/slurmdag-run"'


def location_line() -> str:
    """The location line of a compiled script, before it belongs to any DAG."""
    return f"{LOCATION_PREFIX}'' {ENV_RUN_DIR}={UNBOUND_RUN_DIR}"


def bound_location_line(dag_id: str, run_dir: str) -> str:
    return f"{LOCATION_PREFIX}{shlex.quote(dag_id)} {ENV_RUN_DIR}={shlex.quote(run_dir)}"


def bind_location(script: str, dag_id: str, run_dir: str | None) -> str:
    """The script with its location lines saying DAG `dag_id` and run folder `run_dir` (None: left as compiled, for
    a DAG recorded before run folders existed). Every line that is exactly the compiled location line is bound: a
    group job carries one per member script. A script without one (a site template's own variant) has its first
    line starting with `export SLURMDAG_DAG_ID=` bound; a site template with neither is left alone."""
    if run_dir is None:
        return script
    bound = bound_location_line(dag_id, run_dir)
    unbound = location_line()
    lines = script.split("\n")
    hits = [i for i, line in enumerate(lines) if line == unbound]
    if not hits:
        hits = [i for i, line in enumerate(lines) if line.startswith(LOCATION_PREFIX)][:1]
    for i in hits:
        lines[i] = bound
    return "\n".join(lines)


_SHELL_SAFE = re.compile(r"\A[A-Za-z0-9_.+-]+\Z")  # no character a double-quoted shell word would expand


def outputs_dir_shell(allocation: str, task_group: bool) -> str:
    """SLURMDAG_OUTPUTS as a shell word of the job's script (derived from SLURMDAG_RUN_DIR at run time)."""
    name = allocation if _SHELL_SAFE.match(allocation) else f'"{shlex.quote(allocation)}"'
    task = "/$SLURMDAG_TASK_INDEX" if task_group else ""
    return f'"${ENV_RUN_DIR}/{OUTPUTS_DIR_NAME}/{name}{task}"'


def run_dir(dag_folder: PurePath) -> Path:
    """The run folder of a DAG whose own folder (store or log base) is `dag_folder`."""
    return Path(dag_folder) / RUN_DIR_NAME


def outputs_dir(run_dir: str | os.PathLike[str], allocation: str, task: int | None = None) -> Path:
    """The outputs folder of one allocation (task=None) or of one task of a task group."""
    folder = Path(run_dir) / OUTPUTS_DIR_NAME / allocation
    return folder if task is None else folder / str(task)


def output_file(run_dir: str | os.PathLike[str], allocation: str, name: str, task: int | None = None) -> Path:
    return outputs_dir(run_dir, allocation, task) / name


def helper_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / BIN_DIR_NAME / OUTPUT_HELPER


# The `slurmdag-output` a job finds first on its PATH: POSIX sh, so it works on any node, whatever Python (or
# none) is there. Written atomically (temporary file + rename): a reader never sees half a value.
HELPER_SCRIPT = r"""#!/bin/sh
# slurmdag-output NAME [VALUE]: publish VALUE (without VALUE: standard input) as output NAME of this job.
# Written by slurmdag for its jobs; see docs/passing-data.md.
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: slurmdag-output NAME [VALUE]   (without VALUE the value is read from standard input)" >&2
  exit 2
fi
case "$1" in
  '' | [!A-Za-z]* | *[!A-Za-z0-9_]*)
    echo "slurmdag-output: invalid output name '$1': letters, digits and '_', starting with a letter" >&2
    exit 2 ;;
esac
if [ -z "${SLURMDAG_OUTPUTS:-}" ]; then
  echo "slurmdag-output: SLURMDAG_OUTPUTS is not set: run it inside a job of a slurmdag DAG" >&2
  exit 2
fi
mkdir -p -- "$SLURMDAG_OUTPUTS"
tmp="$SLURMDAG_OUTPUTS/.$1.tmp.$$"
if [ $# -eq 2 ]; then
  printf '%s' "$2" > "$tmp"
else
  cat > "$tmp"
fi
mv -f -- "$tmp" "$SLURMDAG_OUTPUTS/$1"
"""
