"""What a Python step costs over the same shell step (issue 15 target: at most 0.5 s per step on the local cluster).

    eval "$(docker-slurm/env)"                     # the local cluster (docs/local-cluster.md)
    python benchmarks/bench_python_steps.py --links 10 --repeat 3 [--json out.json]

Two measurements, each next to its shell baseline taken in the same run:

  entry    the job entry alone, on this machine: `python .../pystep.py NAME` for a step that reads its parent's
           result, adds one and stores the value (interpreter start-up, loading the call, reading the argument,
           storing .result.pickle/.result.json), against the same work as a shell step: `bash -c` reading the
           parent's value from a file and writing the sum. Median of --entry-runs runs each.
  cluster  two chains of --links steps submitted side by side on the cluster: Python steps (`wf.call` with the
           previous step's handle) and shell steps doing the same in bash (read the parent's file, write the sum).
           In every job a `setup:` line stamps the start (`date +%s.%N`, before the entrypoint); the end is the
           modification time of the file the step wrote. Per step: in-job time (end - start); per chain:
           (last end - first start) / links, which also holds the scheduling between links (same for both).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slurmdag import Workflow  # noqa: E402
from slurmdag.compiler import pysteps  # noqa: E402
from slurmdag.runs import pystep  # noqa: E402
from slurmdag.runs.python_submit import serialise, write_step  # noqa: E402
from slurmdag.state.store import Store  # noqa: E402

TARGET = 0.5  # seconds per step
STAMP = 'date +%s.%N > "$SLURMDAG_RUN_DIR/start-$SLURMDAG_ALLOCATION"'


def add_one(x):
    return x + 1


def start_value():
    return 0


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --- entry: the job entry alone against the same shell work, on this machine ---


def measure_entry(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        wf = Workflow("bench")
        first = wf.call("first", start_value)
        wf.call("second", add_one, first)  # a function of __main__: by value, the job imports cloudpickle
        wf.call("third", operator.add, first, 1)  # an importable function: by name, plain pickle does
        steps = wf.python_steps()
        calls = serialise(steps)
        for name, step in steps.items():
            write_step(str(run_dir), step, calls[name], [str(Path(__file__).resolve().parent)])
        env = {**os.environ, "SLURMDAG_RUN_DIR": str(run_dir)}
        subprocess.run([sys.executable, str(pysteps.JOB_ENTRY), "first"], env=env, check=True)
        shell_dir = Path(tmp) / "shell"
        shell_dir.mkdir()
        (shell_dir / "first").write_text("0")
        shell = f"v=$(cat {shell_dir}/first); mkdir -p {shell_dir}/out; echo $((v + 1)) > {shell_dir}/out/value"
        py, ref, sh = [], [], []
        for _ in range(runs):  # alternating, so a burst of someone else's load hits all
            t = time.perf_counter()
            subprocess.run([sys.executable, str(pysteps.JOB_ENTRY), "second"], env=env, check=True)
            py.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, str(pysteps.JOB_ENTRY), "third"], env=env, check=True)
            ref.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["bash", "-c", shell], check=True)
            sh.append(time.perf_counter() - t)
        assert pystep.read_result(run_dir / "outputs" / "second") == 1
        assert pystep.read_result(run_dir / "outputs" / "third") == 1
    return {
        "python": median(py),
        "python_by_name": median(ref),
        "shell": median(sh),
        "extra": median(py) - median(sh),
        "extra_by_name": median(ref) - median(sh),
    }


# --- cluster: two chains side by side ---


def chains(links: int) -> tuple[Workflow, Workflow]:
    py = Workflow("bench-py", defaults={"walltime": "5m", "setup": [STAMP]})
    prev = py.call("s0", start_value)
    for i in range(1, links):
        prev = py.call(f"s{i}", add_one, prev)
    sh = Workflow("bench-sh", defaults={"walltime": "5m", "setup": [STAMP]})
    out = 'mkdir -p "$SLURMDAG_OUTPUTS" && echo "$v" > "$SLURMDAG_OUTPUTS/value"'
    sh.allocation("s0", f"v=0; {out}")
    for i in range(1, links):
        read = f'v=$(( $(cat "$SLURMDAG_RUN_DIR/outputs/s{i - 1}/value") + 1 ))'
        sh.allocation(f"s{i}", f"{read}; {out}", depends_on=[f"s{i - 1}"])
    return py, sh


def timings(run_dir: Path, links: int, result_file: str) -> tuple[list[float], float]:
    per_step, starts, ends = [], [], []
    for i in range(links):
        start = float((run_dir / f"start-s{i}").read_text())
        end = (run_dir / "outputs" / f"s{i}" / result_file).stat().st_mtime
        per_step.append(end - start)
        starts.append(start)
        ends.append(end)
    return per_step, (max(ends) - min(starts)) / links


def measure_cluster(links: int) -> dict[str, float]:
    py, sh = chains(links)
    handles = [py.submit(), sh.submit()]
    for h in handles:
        h.wait(timeout=600)
    assert handles[0].result(f"s{links - 1}") == links - 1
    store = Store()
    py_steps, py_link = timings(Path(store.load(handles[0].id).run_dir), links, pystep.RESULT_PICKLE)
    sh_steps, sh_link = timings(Path(store.load(handles[1].id).run_dir), links, "value")
    return {
        "python_step": median(py_steps),
        "shell_step": median(sh_steps),
        "extra_step": median(py_steps) - median(sh_steps),
        "python_link": py_link,
        "shell_link": sh_link,
        "extra_link": py_link - sh_link,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, default=10, help="steps per chain on the cluster (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="cluster runs (default 3); tables show medians")
    ap.add_argument("--entry-runs", type=int, default=20, help="runs of the job entry alone (default 20)")
    ap.add_argument("--only", default="entry,cluster", help="entry, cluster (comma-separated)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to this file")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    out: dict[str, object] = {}
    targets = []
    if "entry" in parts:
        entry = measure_entry(args.entry_runs)
        out["entry"] = entry
        print(f"\njob entry alone, median of {args.entry_runs} runs (this machine)")
        rows = [
            ["python step, function of __main__ (by value)", entry["python"], entry["extra"]],
            ["python step, importable function (by name)", entry["python_by_name"], entry["extra_by_name"]],
            ["shell step", entry["shell"], 0.0],
        ]
        print(tabulate(rows, headers=["", "seconds", "extra over shell"], floatfmt=".3f"))
        targets.append(("entry: extra per step", entry["extra"]))
    if "cluster" in parts:
        home = tempfile.mkdtemp(prefix="slurmdag-bench-")
        os.environ.setdefault("SLURMDAG_HOME", home)
        runs = [measure_cluster(args.links) for _ in range(args.repeat)]
        out["cluster"] = runs
        keys = ["python_step", "shell_step", "extra_step", "python_link", "shell_link", "extra_link"]
        med = {k: median([r[k] for r in runs]) for k in keys}
        out["cluster_median"] = med
        print(f"\ncluster: two chains of {args.links} steps side by side, median of {args.repeat} runs")
        rows = [
            ["in-job time per step (setup stamp -> result written)", med["python_step"], med["shell_step"],
             med["extra_step"], " ".join(f"{r['extra_step']:.3f}" for r in runs)],
            ["chain time per link (first start -> last end) / links", med["python_link"], med["shell_link"],
             med["extra_link"], " ".join(f"{r['extra_link']:.3f}" for r in runs)],
        ]  # fmt: skip
        print(tabulate(rows, headers=["", "python s", "shell s", "extra s", "extra per run"], floatfmt=".3f"))
        targets.append(("cluster: extra in-job time per step", med["extra_step"]))
        targets.append(("cluster: extra chain time per link", med["extra_link"]))
    print()
    verdicts = [[what, f"{got:.3f} s", "met" if got <= TARGET else "MISSED"] for what, got in targets]
    print(tabulate(verdicts, headers=[f"target <= {TARGET} s", "measured", ""]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
