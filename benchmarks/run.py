"""slurmdag benchmarks: one entry point, one table per measurement, each target marked met or MISSED.

    eval "$(docker-slurm/env)"                    # the local cluster (docs/local-cluster.md); root for sdiag
    python benchmarks/run.py                      # everything (~10 min on the 2-core machine)
    python benchmarks/run.py --only compile,rpc --repeat 3 --json out.json

--only    compile | submit | rpc | latency | groups (comma-separated; default all)
--sizes   allocations per generated workflow, e.g. 100,500 (default: compile 100,1000,10000; submit 100,500)
--repeat  runs per measurement (default 3); the tables show medians
--json    also write every figure to this file
--backend cli | pyslurm: how slurmdag talks to Slurm in the submit and rpc parts (default cli; docs/backends.md)

What is measured (docs/performance.md has the figures and how to read them):
  compile  validate + compile time and peak memory (benchmarks/bench_compile.py's shapes and measure()).
  submit   wall time of `python -m slurmdag submit` (Python start-up and compile included; slurmdag's bytecode
           compiled beforehand, as an installed package has it) until every job is in
           Slurm and the gate released, next to a hand-written bash loop of `sbatch --parsable --dependency=...`
           for the same graph (roots submitted --hold and released at the end, so nothing runs while it submits);
           the two alternate, in the same run.
  rpc      slurmctld RPCs from `sdiag` before/after: per submitted job, per `status` pass (status.collect) and per
           reconcile pass (reconcile.reconcile_pass, when that module exists). The machine is shared, so each
           message type's count is the median over the repeats (other users' bursts fall out), and it is
           cross-checked against the Slurm commands slurmdag actually ran (runner.command_observer).
  latency  a 20-link chain of `sleep 1` jobs, slurmdag's and bash's side by side: child start - parent end for
           every edge (from sacct, whole seconds, and from timestamps the jobs write, sub-second), and makespan /
           critical path.
  groups   a 30-link chain of `true` allocations submitted with `fuse: auto` (one Slurm job, 30 job steps) and the
           same chain unfused (30 jobs), back to back in the same run: makespan (first allocation's start to the
           last one's end, from timestamps the allocations write) and submit-to-finished wall time (issue 16).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_compile  # noqa: E402  (the compile measurement lives there; reused, not copied)

from slurmdag.backends import choice, runner  # noqa: E402
from slurmdag.compiler import render  # noqa: E402
from slurmdag.compiler.compile import compile_text  # noqa: E402
from slurmdag.model.plan import Plan  # noqa: E402
from slurmdag.runs.submit import submit_plan  # noqa: E402
from slurmdag.state.store import Store  # noqa: E402

SUBMIT_SHAPES = ["chain", "fan-out-fan-in", "layered"]  # --shapes narrows it
LATENCY_LINKS = 20
# Message types slurmd (not a client) sends when jobs run or end; not caused by the command measured.
SLURMD_MESSAGES = {
    "MESSAGE_EPILOG_COMPLETE",
    "REQUEST_COMPLETE_BATCH_SCRIPT",
    "MESSAGE_NODE_REGISTRATION_STATUS",
    "REQUEST_STEP_COMPLETE",
    "REQUEST_COMPLETE_PROLOG",
    "REQUEST_JOB_STEP_CREATE",
    "REQUEST_COMPLETE_JOB_ALLOCATION",
}
SDIAG_READ = "REQUEST_STATS_INFO"  # the sdiag reading itself
# The submit target per backend: the CLI backend runs the same sbatch as bash (plus slurmdag's own work); pyslurm
# submits without a process per job (issue 14).
SUBMIT_TARGET = {"cli": 1.0, "pyslurm": 0.7}
SETTLE = 0.3  # slurmctld counts an RPC after answering it: let the last one land before reading sdiag again
STAMP = Path(tempfile.gettempdir())


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kw)


def median(xs: list[float]) -> float:
    """Median of the runs that finished (a failed run is NaN); NaN when none did."""
    done = [x for x in xs if x == x]
    return statistics.median(done) if done else float("nan")


def p95(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- workflows: bench_compile's shapes, with jobs that do nothing ---


def workflow(shape: str, n: int, entrypoint: str = "true") -> str:
    text = bench_compile.SHAPES[shape](n)
    return re.sub(r"entrypoint: '[^']*'", lambda _: "entrypoint: " + json.dumps(entrypoint), text)


def bash_baseline(plan: Plan, tag: str, folder: Path) -> str:
    """The hand-written equivalent: one sbatch --parsable per job, parents' ids in --dependency, roots held and
    released at the end. Same options and scripts as slurmdag's jobs."""
    var = {job.name: f"J{i}" for i, job in enumerate(plan.jobs)}
    lines = ["#!/bin/bash", "set -e"]
    roots = []
    for i, job in enumerate(plan.jobs):
        script = folder / f"{i}.sh"
        script.write_text(job.script)
        # the options of the job's compiled script (walltime, array, resources), under the baseline's own name
        own = [o for o in render.command_line(render.sbatch_options(job)) if not o.startswith("--job-name=")]
        opts = [*own, f"--job-name={tag}", "--kill-on-invalid-dep=yes"]
        if job.dependency and job.dependency.terms:
            opts.append("--dependency=" + job.dependency.render({k: f"${{{v}}}" for k, v in var.items()}))
        else:
            opts.append("--hold")
            roots.append(var[job.name])
        quoted = " ".join(o if "${" in o else shlex.quote(o) for o in opts)
        lines.append(f"{var[job.name]}=$(sbatch --parsable {quoted} {shlex.quote(str(script))})")
    lines.append("scontrol release " + " ".join(f"${{{r}}}" for r in roots))
    lines.append("echo " + " ".join(f"${{{v}}}" for v in var.values()))
    return "\n".join(lines) + "\n"


# --- the cluster's job table: keep well under MaxJobCount (finished jobs stay MinJobAge seconds) ---


def wait_for_room(jobs_needed: int) -> None:
    limit = int(re.search(r"MaxJobCount\s*=\s*(\d+)", sh(["scontrol", "show", "config"]).stdout).group(1))
    while True:
        in_memory = len(sh(["squeue", "-h", "-t", "all", "-o", "%i"]).stdout.split())
        if in_memory + jobs_needed <= limit - 2000:  # leave room for everybody else's jobs
            return
        print(f"  (waiting for slurmctld to purge finished jobs: {in_memory} in memory)", file=sys.stderr)
        time.sleep(20)


def cancel_ids(ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[i : i + 500]], capture_output=True)


# --- 1. compile ---


def bench_compile_sizes(sizes: list[int], repeat: int) -> dict:
    rows, out, times, mem = [], [], {}, {}
    for shape, make in bench_compile.SHAPES.items():
        for n in sizes:
            secs, mib, jobs = bench_compile.measure(make(n), n, repeat)
            times[(shape, n)], mem[(shape, n)] = secs, mib
            out.append({"shape": shape, "allocations": n, "jobs": jobs, "seconds": secs, "peak_mib": mib})
            rows.append([shape, n, jobs, f"{secs:.3f}", f"{secs / n * 1e6:.0f}", f"{mib:.1f}", f"{mib / n * 1024:.1f}"])
    print(
        tabulate(rows, headers=["shape", "allocations", "jobs", "seconds (best)", "us/alloc", "peak MiB", "KiB/alloc"])
    )
    targets = []
    big = max(sizes)
    if ("layered", big) in times and big >= 10000:
        worst = max(times[(s, big)] for s in bench_compile.SHAPES)
        targets.append((f"compile {big} allocations (every shape) <= 3 s", f"{worst:.2f} s", worst <= 3))
    if len(sizes) >= 2:
        lo, hi = sorted(sizes)[-2], big
        growth = max((mem[(s, hi)] / hi) / (mem[(s, lo)] / lo) for s in bench_compile.SHAPES)
        targets.append((f"memory linear: KiB/alloc at {hi} <= 1.5x that at {lo}", f"{growth:.2f}x", growth <= 1.5))
    return {"rows": out, "targets": targets}


# --- 2. submit ---


def time_bash(plan: Plan, tag: str) -> float:
    """Seconds the bash loop took; NaN (and what sbatch said) when it stopped on a failed sbatch (`set -e`), as a
    hand-written loop does: e.g. "Socket timed out on send/recv operation" from a controller that stalls (docs/
    performance.md: Slurm 25.11 here). The jobs it did submit are cancelled by their name."""
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        script = Path(tmp) / "baseline.sh"
        script.write_text(bash_baseline(plan, tag, Path(tmp)))
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        secs = time.perf_counter() - t0
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()[-1:] or ["(nothing)"]
        print(f"  bash baseline failed after {secs:.1f} s (exit {proc.returncode}): {said[0]}", file=sys.stderr)
        subprocess.run(["scancel", "-n", tag], capture_output=True)
        return float("nan")
    cancel_ids(proc.stdout.split())
    return secs


def time_slurmdag(text: str, home: Path, backend: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="sdbench-", delete=False) as fh:
        fh.write(text)
    env = {**os.environ, "SLURMDAG_HOME": str(home)}
    t0 = time.perf_counter()
    proc = sh([sys.executable, "-m", "slurmdag", "--backend", backend, "submit", fh.name, "--json"], env=env)
    secs = time.perf_counter() - t0
    os.unlink(fh.name)
    dag_id = json.loads(proc.stdout)["dag_id"]
    record = json.loads((home / "dags" / dag_id / "dag.json").read_text())
    cancel_ids([record["gate_job_id"], *record["job_ids"].values()])
    return secs


def compile_bytecode() -> None:
    """Write slurmdag's bytecode (`__pycache__`, git-ignored) before timing, as installing the package does (pip
    compiles a wheel's modules). Otherwise, with PYTHONDONTWRITEBYTECODE set (as on the CI machine), every timed
    run would compile slurmdag's ~60 modules from source first: ~0.4 s that no installed slurmdag pays."""
    package = Path(render.__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], capture_output=True, check=True)


def bench_submit(sizes: list[int], repeat: int, home: Path, backend: str) -> dict:
    rows, out, targets = [], [], []
    compile_bytecode()
    for n in sizes:
        for shape in SUBMIT_SHAPES:
            text = workflow(shape, n)
            plan = compile_text(text, "bench.yaml", max_allocations=n)
            ours, theirs = [], []
            for r in range(repeat):
                wait_for_room(2 * len(plan.jobs) + 10)
                # Alternate who goes first, so a burst of someone else's load hits both alike.
                pair = [
                    lambda theirs=theirs, plan=plan: theirs.append(time_bash(plan, f"sdbench-bash-{os.getpid()}")),
                    lambda ours=ours, text=text: ours.append(time_slurmdag(text, home, backend)),
                ]
                for run in pair if r % 2 == 0 else pair[::-1]:
                    run()
            ratio = median(ours) / median(theirs)
            out.append(
                {
                    "shape": shape,
                    "backend": backend,
                    "allocations": n,
                    "jobs": len(plan.jobs),
                    "slurmdag_s": ours,
                    "bash_s": theirs,
                    "ratio": ratio,
                }
            )
            rows.append(
                [
                    shape,
                    n,
                    len(plan.jobs),
                    f"{median(ours):.2f}",
                    f"{median(theirs):.2f}",
                    f"{ratio:.2f}x",
                    f"{len(plan.jobs) / median(ours):.0f}",
                    " ".join(f"{x:.2f}" for x in ours),
                    " ".join(f"{x:.2f}" for x in theirs),
                ]
            )
            goal = SUBMIT_TARGET[backend]
            if n >= 500 and (backend == "cli" or shape == "chain"):
                targets.append(
                    (f"submit {n} {shape} ({backend}): slurmdag <= {goal}x bash", f"{ratio:.2f}x", ratio <= goal)
                )
    print(
        tabulate(
            rows,
            headers=[
                "shape",
                "allocations",
                "jobs",
                "slurmdag s",
                "bash s",
                "ratio",
                "jobs/s",
                "slurmdag runs",
                "bash runs",
            ],
        )
    )
    return {"rows": out, "targets": targets}


# --- 3. controller load ---


def sdiag() -> dict[str, int]:
    text = sh(["sdiag"]).stdout
    section = text.split("Remote Procedure Call statistics by message type", 1)[1].split("by user", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\w+)\s+\(\s*\d+\)\s+count:(\d+)", section, re.M)}


def rpc_delta(action) -> tuple[dict[str, int], list[list[str]]]:
    """Client RPCs slurmctld counted while `action` ran, and the Slurm commands slurmdag ran meanwhile."""
    seen: list[list[str]] = []
    runner.command_observer = seen.append
    try:
        before = sdiag()
        action()
        time.sleep(SETTLE)
        after = sdiag()
    finally:
        runner.command_observer = None
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {k: v for k, v in delta.items() if v > 0 and k not in SLURMD_MESSAGES and k != SDIAG_READ}, seen


def cli_submit(text: str, home: Path, backend: str) -> str:
    """`slurmdag submit --json` in this process (so runner.command_observer sees its commands); the DAG id."""
    import contextlib
    import io

    from slurmdag.cli import app

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="sdbench-", delete=False) as fh:
        fh.write(text)
    out = io.StringIO()
    os.environ["SLURMDAG_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out):
            app(["--backend", backend, "submit", fh.name, "--json"], standalone_mode=False)
    finally:
        os.unlink(fh.name)
    return json.loads(out.getvalue())["dag_id"]


def median_counts(samples: list[dict[str, int]]) -> dict[str, int]:
    """Per message type, the median over the runs: other users' bursts (and the counter's lag) fall out."""
    keys = set().union(*samples)
    counts = {k: int(statistics.median(s.get(k, 0) for s in samples)) for k in sorted(keys)}
    return {k: v for k, v in counts.items() if v}


def commands_of(seen: list[list[str]]) -> str:
    names = [a[0] if a[0] != "scontrol" else f"scontrol {a[1]}" for a in seen]
    return ", ".join(f"{names.count(c)}x {c}" for c in dict.fromkeys(names))


def bench_rpc(sizes: list[int], repeat: int, home: Path, backend_name: str) -> dict:
    from slurmdag.cli import common

    common.SETTINGS.chosen = None  # each submit below picks (and probes) its backend as a new process would
    backend, store = choice.choose(backend_name, "--backend").backend, Store(home)
    rows, out, targets = [], [], []
    records = []
    per_dag_by_size: dict[str, list[int]] = {}
    for n in sizes:
        for shape in SUBMIT_SHAPES:
            text = workflow(shape, n)
            plan = compile_text(text, "bench.yaml", max_allocations=n)
            samples, seen = [], []
            for _ in range(repeat):
                wait_for_room(len(plan.jobs) + 10)
                holder = []
                common.SETTINGS.chosen = None
                delta, seen = rpc_delta(
                    lambda holder=holder, text=text: holder.append(cli_submit(text, home, backend_name))
                )
                samples.append(delta)
                records.append(store.load(holder[0]))
                if len(records) > 1:  # keep only the newest DAG (the status/reconcile passes read it); no runs
                    cancel_ids([records[-2].gate_job_id, *records[-2].job_ids.values()])
            counts = median_counts(samples)
            total, jobs = sum(counts.values()), len(plan.jobs)
            per_dag = total - jobs
            out.append(
                {
                    "action": f"submit {shape}",
                    "allocations": n,
                    "jobs": jobs,
                    "rpcs": counts,
                    "total": total,
                    "samples": samples,
                    "commands": commands_of(seen),
                }
            )
            rows.append(
                [f"submit {shape} {n}", jobs, total, f"{total / jobs:.3f}", per_dag, _fmt(counts), commands_of(seen)]
            )
            per_dag_by_size.setdefault(shape, []).append(per_dag)
            releases = counts.get("REQUEST_UPDATE_JOB", 0)
            targets.append(
                (
                    f"submit {shape} {n}: <= 1 sbatch RPC per job, the release 1 RPC",
                    f"{counts.get('REQUEST_SUBMIT_BATCH_JOB', 0)} for {jobs} jobs (+gate), {releases} release",
                    counts.get("REQUEST_SUBMIT_BATCH_JOB", 0) <= jobs + 1 and releases <= 1,
                )
            )
    for shape, consts in per_dag_by_size.items():
        targets.append(
            (
                f"submit {shape}: RPCs beyond 1 per job are a per-DAG constant (same at every size)",
                " / ".join(str(c) for c in consts),
                max(consts) - min(consts) <= 1,
            )
        )
    # status and reconcile passes over the last DAG submitted (largest), while its jobs run or wait.
    from slurmdag.runs import status

    dag_id = records[-1].dag_id
    passes = {"status pass (status.collect)": lambda: status.collect(store, backend, dag_id)}
    try:
        from slurmdag.runs import reconcile
    except ImportError:
        reconcile = None  # issue 4's reconciler not present: the hook stays, the row says so
    if reconcile is not None and hasattr(reconcile, "reconcile_pass"):
        passes["reconcile pass (reconcile.reconcile_pass)"] = lambda: reconcile.reconcile_pass(store, backend, [dag_id])
    else:
        rows.append(
            ["reconcile pass", "", "", "", "", "not measured: slurmdag.runs.reconcile.reconcile_pass missing", ""]
        )
    for what, action in passes.items():
        samples, seen = [], []
        for _ in range(max(repeat, 5)):
            delta, seen = rpc_delta(action)
            samples.append(delta)
        counts = median_counts(samples)
        total = sum(counts.values())
        out.append({"action": what, "rpcs": counts, "total": total, "samples": samples, "commands": commands_of(seen)})
        rows.append([what, len(records[-1].job_ids), total, "", "", _fmt(counts), commands_of(seen)])
        targets.append((f"{what}: <= 2 RPCs", str(total), total <= 2))
    cancel_ids([records[-1].gate_job_id, *records[-1].job_ids.values()])
    print(
        tabulate(
            rows,
            headers=[
                "action",
                "jobs",
                "RPCs",
                "per job",
                "per DAG",
                "by type (median over runs)",
                "commands slurmdag ran",
            ],
        )
    )
    return {"rows": out, "targets": targets}


def _fmt(counts: dict[str, int]) -> str:
    return " ".join(f"{k.removeprefix('REQUEST_')}={v}" for k, v in counts.items())


# --- 4. latency ---


def stamped(folder: Path) -> str:
    """An entrypoint that sleeps 1 s between two sub-second timestamps in `folder`/<allocation>."""
    f = f"{folder}/$SLURMDAG_ALLOCATION"
    return f"date +%s.%N > {f}.start; sleep 1; date +%s.%N > {f}.end"


def sacct_times(ids: list[str]) -> dict[str, tuple[int, int]]:
    out = sh(
        ["sacct", "-X", "-n", "-P", "-o", "JobIDRaw,Start,End", "-j", ",".join(ids), "-S", "now-1days", "-E", "now"]
    ).stdout
    times = {}
    for line in out.splitlines():
        job, start, end = line.split("|")
        if start[:1].isdigit() and end[:1].isdigit():
            times[job] = (_epoch(start), _epoch(end))
    return times


def _epoch(text: str) -> int:
    return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


def chain_figures(names: list[str], ids: dict[str, str], folder: Path) -> dict:
    acct = sacct_times([ids[n] for n in names])
    stamps = {n: (float((folder / f"{n}.start").read_text()), float((folder / f"{n}.end").read_text())) for n in names}
    edges = list(zip(names, names[1:], strict=False))
    by_sacct = [acct[ids[c]][0] - acct[ids[p]][1] for p, c in edges]
    by_stamp = [stamps[c][0] - stamps[p][1] for p, c in edges]
    makespan = stamps[names[-1]][1] - stamps[names[0]][0]
    critical = sum(e - s for s, e in stamps.values())  # a chain's critical path is all of it
    return {
        "sacct": by_sacct,
        "stamps": by_stamp,
        "makespan": makespan,
        "critical_path": critical,
        "ratio": makespan / critical,
    }


def run_chains(links: int) -> tuple[dict, dict]:
    """One slurmdag chain and one bash chain, submitted back to back and running side by side."""
    ours_dir = Path(tempfile.mkdtemp(prefix="sdbench-lat-sd-", dir=STAMP))
    theirs_dir = Path(tempfile.mkdtemp(prefix="sdbench-lat-bash-", dir=STAMP))
    text = workflow("chain", links, stamped(ours_dir))
    plan = compile_text(text, "bench.yaml", max_allocations=links)
    names = [j.name for j in plan.jobs]
    # The bash chain runs the very same scripts, each writing into its own folder.
    bash_plan = compile_text(workflow("chain", links, stamped(theirs_dir)), "bench.yaml", max_allocations=links)
    home = Path(tempfile.mkdtemp(prefix="sdbench-home-"))
    record = submit_plan(plan, Store(home), choice.choose("cli", "latency").backend)
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        script = Path(tmp) / "baseline.sh"
        script.write_text(bash_baseline(bash_plan, f"sdbench-lat-{os.getpid()}", Path(tmp)))
        bash_ids = dict(zip(names, sh(["bash", str(script)]).stdout.split(), strict=False))
    deadline = time.monotonic() + links * 10 + 120
    while not all((d / f"{names[-1]}.end").exists() for d in (ours_dir, theirs_dir)):
        if time.monotonic() > deadline:
            raise SystemExit("latency chains did not finish in time")
        time.sleep(1)
    time.sleep(3)  # sacct lags slurmctld
    return chain_figures(names, record.job_ids, ours_dir), chain_figures(names, bash_ids, theirs_dir)


def bench_latency(repeat: int) -> dict:
    wait_for_room(4 * LATENCY_LINKS)
    runs = [run_chains(LATENCY_LINKS) for _ in range(repeat)]
    rows, out = [], {}
    for who, k in (("slurmdag", 0), ("bash", 1)):
        sacct_l = [x for r in runs for x in r[k]["sacct"]]
        stamp_l = [x for r in runs for x in r[k]["stamps"]]
        ratios = [r[k]["ratio"] for r in runs]
        out[who] = {"sacct_edge_s": sacct_l, "stamp_edge_s": stamp_l, "makespan_over_critical_path": ratios}
        rows.append(
            [
                who,
                len(stamp_l),
                f"{median(sacct_l):.2f}",
                f"{p95(sacct_l):.2f}",
                f"{median(stamp_l):.3f}",
                f"{p95(stamp_l):.3f}",
                f"{median(ratios):.3f}",
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "chain of 20 x sleep 1",
                "edges",
                "sacct median s",
                "sacct p95 s",
                "stamped median s",
                "stamped p95 s",
                "makespan / critical path",
            ],
        )
    )
    diff = median(out["slurmdag"]["stamp_edge_s"]) - median(out["bash"]["stamp_edge_s"])
    return {"rows": out, "targets": [("median edge latency within 0.2 s of bash's", f"{diff:+.3f} s", diff <= 0.2)]}


# --- 5. groups: one Slurm job for a chain ---

GROUP_LINKS = 30


def group_chain(links: int, folder: Path, fuse: bool) -> str:
    """`links` allocations in a chain, each running `true` between two timestamps in `folder`."""
    f = f"{folder}/$SLURMDAG_ALLOCATION"
    entry = f"date +%s.%N > {f}.start; true; date +%s.%N > {f}.end"
    lines = [f"name: chain{links}", "fuse: auto" if fuse else "", "defaults: {walltime: 1, ntasks: 1}", "allocations:"]
    for i in range(1, links + 1):
        dep = f", depends_on: [a{i - 1:02d}]" if i > 1 else ""
        lines.append(f"  - {{name: a{i:02d}, entrypoint: {json.dumps(entry)}{dep}}}")
    return "\n".join(lines) + "\n"


def run_group_chain(links: int, fuse: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"sdbench-groups-{'fused' if fuse else 'unfused'}-", dir=STAMP))
    plan = compile_text(group_chain(links, folder, fuse), "bench.yaml", max_allocations=links)
    home = Path(tempfile.mkdtemp(prefix="sdbench-home-"))
    t0 = time.monotonic()
    submit_plan(plan, Store(home), choice.choose("cli", "groups").backend)
    last = folder / f"a{links:02d}.end"
    deadline = t0 + links * 10 + 120
    while not last.exists():
        if time.monotonic() > deadline:
            raise SystemExit("group chains did not finish in time")
        time.sleep(0.05)
    wall = time.monotonic() - t0
    stamps = {
        n: (float((folder / f"{n}.start").read_text()), float((folder / f"{n}.end").read_text()))
        for n in (f"a{i:02d}" for i in range(1, links + 1))
    }
    makespan = stamps[f"a{links:02d}"][1] - stamps["a01"][0]
    return {"slurm_jobs": len(plan.submissions()) + 1, "makespan": makespan, "submit_to_end": wall}


def bench_groups(repeat: int) -> dict:
    wait_for_room(2 * GROUP_LINKS)
    runs = []
    for _ in range(repeat):  # alternate, so a burst of someone else's load tends to hit both
        runs.append((run_group_chain(GROUP_LINKS, True), run_group_chain(GROUP_LINKS, False)))
    fused = {k: [r[0][k] for r in runs] for k in ("makespan", "submit_to_end")}
    unfused = {k: [r[1][k] for r in runs] for k in ("makespan", "submit_to_end")}
    ratio = median(fused["makespan"]) / median(unfused["makespan"])
    rows = [
        [
            who,
            d["slurm_jobs"],
            f"{median(f['makespan']):.2f}",
            " ".join(f"{x:.2f}" for x in f["makespan"]),
            f"{median(f['submit_to_end']):.2f}",
        ]
        for who, d, f in (
            ("fuse: auto", runs[0][0], fused),
            ("unfused (baseline)", runs[0][1], unfused),
        )
    ]
    print(
        tabulate(
            rows,
            headers=[
                f"chain of {GROUP_LINKS} x true",
                "Slurm jobs (+gate)",
                "makespan median s",
                "runs",
                "submit to end s",
            ],
        )
    )
    print(f"makespan fused / unfused: {ratio:.3f}")
    return {
        "rows": {"fused": fused, "unfused": unfused, "ratio": ratio},
        "targets": [("fused makespan <= 0.2 x unfused (same run)", f"{ratio:.3f}", ratio <= 0.2)],
    }


# --- main ---


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="compile,submit,rpc,latency,groups")
    ap.add_argument("--sizes", help="allocations per workflow, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", dest="json_out", help="write all figures to this file")
    ap.add_argument("--backend", choices=("cli", "pyslurm"), default="cli", help="slurmdag's backend (submit, rpc)")
    ap.add_argument("--shapes", default=",".join(SUBMIT_SHAPES), help="workflow shapes of the submit and rpc parts")
    args = ap.parse_args()
    shapes = tuple(s.strip() for s in args.shapes.split(",") if s.strip())
    if not set(shapes) <= set(SUBMIT_SHAPES):
        ap.error(f"--shapes: choose from {', '.join(SUBMIT_SHAPES)}")
    SUBMIT_SHAPES[:] = shapes
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - {"compile", "submit", "rpc", "latency", "groups"}
    if unknown:
        ap.error(f"unknown --only part(s): {', '.join(sorted(unknown))}")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    home = Path(tempfile.mkdtemp(prefix="sdbench-home-"))
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "repeat": args.repeat,
        "backend": args.backend,
    }
    parts = {
        "compile": lambda: bench_compile_sizes(sizes or [100, 1000, 10000], args.repeat),
        "submit": lambda: bench_submit(sizes or [100, 500], args.repeat, home, args.backend),
        "rpc": lambda: bench_rpc(sizes or [100, 500], args.repeat, home, args.backend),
        "latency": lambda: bench_latency(args.repeat),
        "groups": lambda: bench_groups(args.repeat),
    }
    targets = []
    for part in only:
        print(f"\n== {part} ==")
        results[part] = parts[part]()
        targets += results[part]["targets"]
    print("\n== targets ==")
    print(tabulate([[what, got, mark(ok)] for what, got, ok in targets], headers=["target", "measured", ""]))
    results["targets"] = [{"target": w, "measured": g, "met": ok} for w, g, ok in targets]
    results["machine"]["load_after"] = os.getloadavg()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
