"""The local DAG store: what was submitted, as which Slurm jobs, and how far the submission got.

Layout (docs/state-store.md):  <home>/dags/<dag_id>/{dag.json, plan.json, scripts/<job>.sbatch, lock},
<home>/store.lock, <home>/reconcile.lock
Every write is atomic (temp file + fsync + rename), so a reader sees the old or the new file, never half of one.
Writers of one DAG hold its `lock` (flock); picking a new id holds `<home>/store.lock`; the one reconciler that acts
holds `<home>/reconcile.lock`. Only this module touches these files. flock is released by the
kernel when its holder dies, which is how a later command tells an abandoned submission from a running one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from slurmdag.model.errors import CorruptRecordError, Problem, StoreError, UnknownDagError, UsageError
from slurmdag.model.plan import Plan

RECORD_FORMAT = 1
DAG_ID = re.compile(r"\A[0-9a-f]{8}\Z")

# Submission states kept in dag.json.
SUBMITTING = "submitting"  # jobs are being submitted; the gate is still held
SUBMITTED = "submitted"  # every job is in Slurm and the gate was released
FAILED = "failed"  # submission failed; everything submitted was cancelled (unless cleanup_pending)
CANCELLED = "cancelled"  # the user cancelled the DAG


def default_home() -> Path:
    env = os.environ.get("SLURMDAG_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "slurmdag"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


@dataclass
class DagRecord:
    """dag.json: one submitted (or attempted) DAG."""

    dag_id: str
    name: str
    created: str  # ISO 8601, UTC
    submission: str = SUBMITTING
    job_ids: dict[str, str] = field(default_factory=dict)  # planned job name -> Slurm job id
    gate_job_id: str | None = None
    workflow: str | None = None  # path of the workflow file it came from
    submit_dir: str | None = None  # where `submit` ran: the jobs' working directory (relative output paths)
    log_dir: str | None = None  # the folder the DAG's default output files go to (slurmdag/runs/logs.py)
    run_dir: str | None = None  # SLURMDAG_RUN_DIR of its jobs: published outputs (model/run_layout.py)
    attempt: int = 1
    # Who is/was submitting: lets a later command say which process left a submission half-done.
    pid: int | None = None
    host: str | None = None
    boot_id: str | None = None
    error: str | None = None  # why the submission failed
    cleanup_pending: bool = False  # a failed submission whose jobs could not all be cancelled yet
    cancelled_at: str | None = None
    final_state: str | None = None  # cached DAG state once terminal, so `list` need not ask Slurm again
    counts: dict[str, int] = field(default_factory=dict)  # allocation state -> count at the last status
    updated: str | None = None
    # "native" (Slurm cancels what can never run) or "reconciler" (`slurmdag reconcile` does): see docs/semantics.md
    cascade: str = "native"
    # resume/redo history (slurmdag/state/attempt_history.py): one dict per attempt, oldest first; empty
    # for a DAG submitted
    # once. `job_ids` then holds each allocation's newest job and `attempt` the current attempt's number.
    attempts: list[dict] = field(default_factory=list)
    format: int = RECORD_FORMAT

    def created_at(self) -> datetime:
        when = datetime.fromisoformat(self.created)
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def stamp_submitter(self) -> None:
        """Note this process as the one submitting, so a later command can say who left a submission half-done."""
        self.pid, self.host, self.boot_id = os.getpid(), socket.gethostname(), boot_id()

    def to_json(self) -> str:
        # Shallow on purpose: the values are already JSON types, and asdict's deep copy made every per-wave save
        # of a submission cost O(jobs) Python calls.
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DagRecord:
        """Parse dag.json; ValueError saying what is wrong for anything slurmdag did not write."""
        data = json.loads(text)
        problem = record_problem(data)
        if problem:
            raise ValueError(problem)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_OPTIONAL_STR = (str, type(None))
_JOB_ID = re.compile(r"[0-9]+(_\S+)?")  # "123", or an array's "123_[0-3]" / a task's "123_4"
# The JSON type of every field (an older record may lack optional ones; unknown keys are ignored).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "dag_id": str,
    "name": str,
    "created": str,
    "submission": str,
    "job_ids": dict,
    "gate_job_id": _OPTIONAL_STR,
    "workflow": _OPTIONAL_STR,
    "run_dir": _OPTIONAL_STR,
    "attempt": int,
    "pid": (int, type(None)),
    "host": _OPTIONAL_STR,
    "boot_id": _OPTIONAL_STR,
    "error": _OPTIONAL_STR,
    "cleanup_pending": bool,
    "cancelled_at": _OPTIONAL_STR,
    "final_state": _OPTIONAL_STR,
    "counts": dict,
    "updated": _OPTIONAL_STR,
    "cascade": str,
    "attempts": list,
    "format": int,
}
_REQUIRED = ("dag_id", "name", "created")


def record_problem(data: object) -> str | None:
    """What makes `data` (parsed dag.json) unusable, or None. Checked on every read: a record is trusted by every
    command after it, so a damaged one must stop here, named, instead of failing somewhere later."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__ if data is not None else 'null'}"
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, kind in _FIELD_TYPES.items():
        if key not in data:
            continue
        value = data[key]
        # bool is an int to Python, never to a record
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            return f"{key} is {json.dumps(value)[:60]}, not {_kind_name(kind)}"
    if not DAG_ID.match(data["dag_id"]):
        return f"dag_id {data['dag_id'][:40]!r} is not 8 hex characters"
    try:
        datetime.fromisoformat(data["created"])
    except ValueError:
        return f"created {data['created'][:40]!r} is not an ISO 8601 time"
    for what in ("job_ids", "counts"):
        for k, v in data.get(what, {}).items():
            ok = isinstance(v, str) and bool(_JOB_ID.fullmatch(v)) if what == "job_ids" else type(v) is int
            if not ok:
                return (
                    f"{what}[{k[:40]!r}] is {json.dumps(v)[:40]}, not {'a job id' if what == 'job_ids' else 'a count'}"
                )
    for attempt in data.get("attempts", []):
        if not isinstance(attempt, dict) or not isinstance(attempt.get("job_ids", {}), dict):
            return "attempts holds something that is not an attempt"
    return None


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a number", bool: "true/false", dict: "an object", list: "a list", type(None): "null"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names[k] for k in kinds)


class DagLock:
    """An exclusive flock on one of the store's lock files; released on close or when the process dies."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> DagLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock(path: Path, blocking: bool) -> DagLock | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return DagLock(path, fd)


def atomic_write(path: Path, text: str, durable: bool = True) -> None:
    """Write `text` to `path` so that readers see either the old or the new content, even after a crash.

    durable=False skips the fsyncs: still atomic for other processes and across a crash of this one, but a power
    loss may lose the write (submit uses it for the per-wave records it rewrites many times a second).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


GATE_SCRIPT_NAME = "+gate.sbatch"  # '+' cannot occur in a planned job's name: never collides with one
RECONCILE_LOCK = "reconcile.lock"


def script_file_name(job_name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", job_name).lstrip(".") or "_"
    return f"{safe}.sbatch"


class Store:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_home()

    # --- paths ---

    @property
    def dags_dir(self) -> Path:
        return self.root / "dags"

    def dag_dir(self, dag_id: str) -> Path:
        check_dag_id(dag_id)
        return self.dags_dir / dag_id

    def script_path(self, dag_id: str, job_name: str) -> Path:
        return self.dag_dir(dag_id) / "scripts" / script_file_name(job_name)

    def gate_script_path(self, dag_id: str) -> Path:
        return self.dag_dir(dag_id) / "scripts" / GATE_SCRIPT_NAME

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.dags_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as ex:
            raise StoreError(f"cannot create the slurmdag store at {self.root}: {ex}") from ex

    # --- locks ---

    def lock_dag(self, dag_id: str, blocking: bool = True) -> DagLock | None:
        """The writer lock of one DAG; with blocking=False, None if another process holds it."""
        return _lock(self.dag_dir(dag_id) / "lock", blocking)

    def lock_reconciler(self) -> DagLock | None:
        """The reconciler's lock (only one reconciler acts at a time); None if another process holds it."""
        self._ensure_root()
        return _lock(self.root / RECONCILE_LOCK, blocking=False)

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        self._ensure_root()
        lock = _lock(self.root / "store.lock", blocking=True)
        assert lock is not None
        with lock:
            yield

    # --- create / read / write ---

    def create(
        self,
        plan: Plan,
        workflow: str | None = None,
        gate_script: str | None = None,
        durable: bool = True,
        scripts: Callable[[str], Mapping[str, str]] | None = None,
    ) -> tuple[DagRecord, DagLock]:
        """A new DAG folder with plan.json, its scripts and dag.json (state "submitting"), returned locked.

        `scripts(dag_id)`, if given, supplies the script files (job name -> text; the gate as "+gate"): submit
        writes them bound to the new DAG's id. Otherwise each job's compiled script (and `gate_script`) is written.
        durable=False leaves the scripts and plan.json unsynced; the caller then runs `sync_files` (submit does it
        in the background while sbatch runs, instead of paying one fsync per script up front).
        """
        with self._store_lock():
            while True:
                dag_id = secrets.token_hex(4)
                folder = self.dags_dir / dag_id
                try:
                    folder.mkdir(mode=0o700)
                    break
                except FileExistsError:
                    continue  # 1 in 4 billion per existing DAG: pick another
            lock = self.lock_dag(dag_id)
            assert lock is not None
        try:
            (folder / "scripts").mkdir(mode=0o700)
            if scripts is not None:
                self.write_scripts(dag_id, scripts(dag_id), durable=durable)
            else:
                self.write_scripts(dag_id, {job.name: job.script for job in plan.jobs}, durable=durable)
            if gate_script is not None:
                atomic_write(self.gate_script_path(dag_id), gate_script, durable=durable)
            atomic_write(folder / "plan.json", plan.to_json(compact=True), durable=durable)
            record = DagRecord(dag_id=dag_id, name=plan.workflow, created=utc_now(), workflow=workflow)
            record.stamp_submitter()
            self.save(record)
        except BaseException:
            lock.release()
            raise
        return record, lock

    def write_scripts(self, dag_id: str, scripts: Mapping[str, str], durable: bool = True) -> None:
        """Write script files (job name -> text), e.g. a new attempt's, bound to what it submits."""
        for name, text in scripts.items():
            atomic_write(self.script_path(dag_id, name), text, durable=durable)

    def replace_plan(self, dag_id: str, plan: Plan) -> None:
        """Write a new plan.json and its scripts (resume --from a changed workflow). The caller holds the DAG's lock.

        Scripts come first: a reader that sees the new plan finds every script it names.
        """
        try:
            for job in plan.jobs:
                atomic_write(self.script_path(dag_id, job.name), job.script)
            atomic_write(self.dag_dir(dag_id) / "plan.json", plan.to_json(compact=True))
        except OSError as ex:
            raise StoreError(f"cannot write the plan of DAG {dag_id}: {ex}") from ex

    def sync_files(self, dag_id: str) -> None:
        """fsync a DAG's scripts, plan.json and their folders (what `create(durable=False)` left unsynced)."""
        folder = self.dag_dir(dag_id)
        paths = sorted((folder / "scripts").iterdir()) + [folder / "plan.json", folder / "scripts", folder]
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def exists(self, dag_id: str) -> bool:
        try:
            return (self.dag_dir(dag_id) / "dag.json").is_file()
        except PermissionError as ex:  # another user's store (created 0700): theirs alone
            raise StoreError(
                f"cannot read the slurmdag store at {self.root}: permission denied "
                "(a DAG store belongs to the user who created it)"
            ) from ex

    def load(self, dag_id: str) -> DagRecord:
        path = self.dag_dir(dag_id) / "dag.json"
        try:
            record = DagRecord.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownDagError(dag_id) from None
        except ValueError as ex:  # also bad UTF-8 and bad JSON
            raise CorruptRecordError(path, str(ex), dag_id) from None
        except OSError as ex:
            raise StoreError(f"cannot read {path}: {ex}") from ex
        if record.dag_id != dag_id:
            raise CorruptRecordError(path, f"it is the record of DAG {record.dag_id}", dag_id)
        return record

    def load_plan(self, dag_id: str) -> Plan | None:
        path = self.dag_dir(dag_id) / "plan.json"
        try:
            return Plan.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except OSError as ex:
            raise StoreError(f"cannot read {path}: {ex}") from ex
        except (ValueError, KeyError, TypeError, AttributeError) as ex:  # not the shape Plan.to_json writes
            raise CorruptRecordError(path, f"{type(ex).__name__}: {ex}", dag_id) from None

    def save(self, record: DagRecord, durable: bool = True) -> None:
        """Write dag.json atomically. The caller holds the DAG's lock."""
        record.updated = utc_now()
        try:
            atomic_write(self.dag_dir(record.dag_id) / "dag.json", record.to_json(), durable=durable)
        except OSError as ex:
            raise StoreError(f"cannot write the record of DAG {record.dag_id}: {ex}") from ex

    def update(self, dag_id: str, change: Callable[[DagRecord], None], blocking: bool = False) -> DagRecord | None:
        """Re-read, change and save dag.json under the DAG's lock; None if the lock is busy (non-blocking)."""
        lock = self.lock_dag(dag_id, blocking=blocking)
        if lock is None:
            return None
        with lock:
            record = self.load(dag_id)
            change(record)
            self.save(record)
            return record

    def remove(self, dag_id: str) -> bool:
        """Delete a DAG's folder (record, plan, scripts, logs kept there); False if another process holds its lock.

        The folder is first renamed out of `dags/`, so a reader never sees half of it."""
        import shutil

        lock = self.lock_dag(dag_id, blocking=False)
        if lock is None:
            return False
        with lock:
            doomed = self.root / f".forget-{dag_id}-{secrets.token_hex(4)}"
            os.rename(self.dag_dir(dag_id), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def list_records(self) -> list[DagRecord]:
        """Every readable DAG record, newest first (folders still being created are skipped, and so are unreadable
        records: `scan` names those)."""
        return self.scan()[0]

    def scan(self) -> tuple[list[DagRecord], list[CorruptRecordError]]:
        """Every readable DAG record, newest first, and what was wrong with each record that could not be read: one
        damaged dag.json must not hide every other DAG."""
        if not self.dags_dir.is_dir():
            return [], []
        records = []
        unreadable = []
        for folder in self.dags_dir.iterdir():
            if not DAG_ID.match(folder.name):
                continue
            try:
                records.append(self.load(folder.name))
            except UnknownDagError:
                continue  # being created right now
            except CorruptRecordError as ex:
                unreadable.append(ex)
            except StoreError as ex:  # unreadable file (permissions, I/O error): still only this DAG
                unreadable.append(CorruptRecordError(folder / "dag.json", str(ex.__cause__ or ex), folder.name))
        records.sort(key=lambda r: (r.created_at(), r.dag_id), reverse=True)
        unreadable.sort(key=lambda e: e.path)
        return records, unreadable


def check_dag_id(dag_id: str) -> str:
    if not DAG_ID.match(dag_id):
        raise UsageError(
            Problem(
                f"{dag_id!r} is not a DAG id (8 hex characters)",
                file="slurmdag",
                hint="`slurmdag list` shows your DAGs",
            )
        )
    return dag_id
