"""The command line: the only layer that prints. Maps slurmdag errors to exit codes (2 bad input, 1 runtime)."""

from __future__ import annotations

import atexit
import errno
import gc
import os
import sys

import typer

from slurmdag import __version__
from slurmdag.model.errors import SlurmdagError

app = typer.Typer(
    name="slurmdag",
    help="Turn a workflow DAG into native Slurm dependency chains, submit it all at once, and follow it.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# At exit, Python's last garbage collections walk every object the command left (a 500-allocation submit: the
# plan, its scripts, the compiler's and pyslurm's objects): 0.1-0.3 s on the loaded 2-core CI machine. Frozen, they
# are not walked; this runs after non-daemon threads were joined and before the modules are torn down, and only
# skips breaking reference cycles in a process that is ending (its memory goes back to the system anyway).
atexit.register(gc.freeze)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"slurmdag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    backend: str = typer.Option(
        None,
        "--backend",
        metavar="auto|cli|pyslurm",
        help="How to talk to Slurm: its commands (cli), pyslurm in-process, or auto (pyslurm when it works and "
        "matches the cluster's Slurm). Default: $SLURMDAG_BACKEND, the site config's `backend:`, else auto.",
        show_default=False,
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Say which backend is used and why."),
) -> None:
    from slurmdag.cli import common

    common.SETTINGS.backend = backend
    common.SETTINGS.verbose = verbose
    common.SETTINGS.chosen = None  # chosen anew by each invocation (tests run several in one process)


def main() -> None:
    try:
        # In this mode the framework returns a command's typer.Exit code instead of exiting with it.
        rc = app(prog_name="slurmdag", standalone_mode=False)
    except SlurmdagError as err:
        typer.echo(str(err), err=True)
        sys.exit(err.exit_code)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as ex:
        if ex.errno not in (errno.EIO, errno.EPIPE):
            raise
        # The terminal hung up or the reader of a pipe left: nobody is there to tell. Whatever the command did is
        # done (a submission is finished); what is still buffered for the dead terminal goes to /dev/null instead.
        sys.stdout = sys.stderr = open(os.devnull, "w")  # open until the process exits
        sys.exit(1)
    except Exception as ex:
        # Usage errors from the CLI framework (typer vendors its own click): shown plainly, exit 2.
        if hasattr(ex, "show") and hasattr(ex, "exit_code"):
            ex.show()
            sys.exit(2)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


# Commands register themselves on `app` when their modules are imported (after `app` exists).
from slurmdag.cli import authoring, following, inspecting, policy, porting, recovery, running  # noqa: E402,F401
