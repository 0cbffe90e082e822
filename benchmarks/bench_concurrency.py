"""How close each per-DAG concurrency mechanism gets to the best possible makespan (run on demand, prints tables).

    python benchmarks/bench_concurrency.py [--k 2] [--seeds 200]             # simulation, many random DAGs
    python benchmarks/bench_concurrency.py --cluster [--k 2] [--width 10]    # real cluster: a fan-out of sleeps

Mechanisms (all need no slurmdag process once submitted):
  lanes/walltime  dependency lanes (slurmdag.compiler.lanes), lanes assigned with each job's walltime as its length
  lanes/equal     the same without walltimes (every job looks equally long: round-robin-like assignment)
  array %K        one throttled array (only for a homogeneous fan-out that can be written as a task group)
Reference: "greedy" = a live scheduler with K slots starting the next ready job whenever one ends (what a polling
daemon could do at best); "bound" = max(critical path, total work / K), a lower bound on any schedule.
Simulation: jobs start the moment their dependencies are met (scheduling latency ignored); durations are random
(1-10 units, walltime estimates exact, or off by up to x2 with --noise).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from tabulate import tabulate

from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.lanes import apply_max_concurrent
from slurmdag.model.plan import Plan


def workflow(kind: str, n: int, durations: list[int], walltimes: bool, rng: random.Random) -> str:
    lines = ["name: bench", "allocations:"]
    for i in range(n):
        wall = f", walltime: {durations[i]}" if walltimes else ""
        if kind == "fan-out":
            deps = "" if i == 0 else ", depends_on: [j0]"
        elif kind == "layered":
            deps = "" if i < 4 else f", depends_on: [j{rng.randrange(max(0, i - 8), i)}]"
        else:  # random DAG
            parents = sorted({rng.randrange(i) for _ in range(rng.randint(0, 2))}) if i else []
            deps = f", depends_on: [{', '.join(f'j{p}' for p in parents)}]" if parents else ""
        lines.append(f"  - {{name: j{i}, entrypoint: x{wall}{deps}}}")
    return "\n".join(lines) + "\n"


def simulate_static(plan: Plan, length: dict[str, int]) -> tuple[int, int]:
    """(makespan, peak concurrency) when every job starts as soon as its dependency terms are met."""
    end: dict[str, int] = {}
    spans = []
    for job in plan.jobs:
        start = max((end[t.parent] for t in (job.dependency.terms if job.dependency else ())), default=0)
        end[job.name] = start + length[job.name]
        spans.append((start, end[job.name]))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    run = peak = 0
    for _, d in events:
        run += d
        peak = max(peak, run)
    return max(end.values()), peak


def simulate_greedy(plan: Plan, length: dict[str, int], k: int) -> int:
    parents = {j.name: set(j.parents()) for j in plan.jobs}
    order = {j.name: i for i, j in enumerate(plan.jobs)}
    done: set[str] = set()
    running: list[tuple[int, str]] = []
    started: set[str] = set()
    now = 0
    while len(done) < len(plan.jobs):
        ready = sorted((n for n in parents if n not in started and parents[n] <= done), key=order.get)
        while ready and len(running) < k:
            n = ready.pop(0)
            started.add(n)
            heapq.heappush(running, (now + length[n], n))
        now, n = heapq.heappop(running)
        done.add(n)
    return now


def bound(plan: Plan, length: dict[str, int], k: int) -> float:
    end: dict[str, int] = {}
    for job in plan.jobs:
        end[job.name] = max((end[p] for p in job.parents()), default=0) + length[job.name]
    return max(max(end.values()), sum(length.values()) / k)


def run_simulation(k: int, seeds: int, noise: float) -> None:
    rows = []
    for kind, n in (("fan-out", 11), ("layered", 30), ("random", 30)):
        ratios: dict[str, list[float]] = {"lanes/walltime": [], "lanes/equal": [], "greedy": []}
        peaks = 0
        for seed in range(seeds):
            rng = random.Random(seed)
            true = [rng.randint(1, 10) for _ in range(n)]
            guess = [max(1, round(t * rng.uniform(1 / (1 + noise), 1 + noise))) for t in true]
            length = {f"j{i}": true[i] for i in range(n)}
            best = bound(compile_text(workflow(kind, n, true, False, random.Random(seed))), length, k)
            for name, walls in (("lanes/walltime", True), ("lanes/equal", False)):
                plan = compile_text(workflow(kind, n, guess, walls, random.Random(seed)))
                makespan, peak = simulate_static(apply_max_concurrent(plan, k), length)
                peaks = max(peaks, peak)
                ratios[name].append(makespan / best)
            ratios["greedy"].append(
                simulate_greedy(compile_text(workflow(kind, n, true, False, random.Random(seed))), length, k) / best
            )
        for name, r in ratios.items():
            r.sort()
            rows.append(
                [
                    kind,
                    n,
                    name,
                    f"{sum(r) / len(r):.3f}",
                    f"{r[len(r) // 2]:.3f}",
                    f"{r[int(len(r) * 0.9)]:.3f}",
                    f"{r[-1]:.3f}",
                    peaks if name.startswith("lanes") else k,
                ]
            )
    print(f"makespan / lower bound, K={k}, {seeds} random instances each, walltime noise x{1 + noise:g}")
    print(tabulate(rows, headers=["shape", "jobs", "mechanism", "mean", "median", "p90", "max", "peak running"]))


def _slurm(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def run_cluster(k: int, width: int) -> None:
    """A fan-out of `width` sleeps (2..6 s) under max_concurrent=k, as lanes and as one %k array; real makespans."""
    rng = random.Random(1)
    sleeps = [rng.randint(2, 6) for _ in range(width)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        lanes = os.path.join(tmp, "lanes.yaml")
        with open(lanes, "w") as f:
            f.write(f"name: bench-lanes\nmax_concurrent: {k}\nallocations:\n")
            for i, s in enumerate(sleeps):
                f.write(f"  - {{name: s{i}, entrypoint: 'sleep {s}', walltime: '{s}s'}}\n")
        arr = os.path.join(tmp, "array.yaml")
        with open(arr, "w") as f:
            cases = " ".join(f"{i}) sleep {s};;" for i, s in enumerate(sleeps))
            f.write(
                f"name: bench-array\nmax_concurrent: {k}\nallocations:\n  - name: s\n    tasks: {width}\n"
                f"    entrypoint: 'case $SLURMDAG_TASK_INDEX in {cases} esac'\n"
            )
        for label, path in (("lanes/walltime", lanes), ("array %K", arr)):
            out = json.loads(_slurm(sys.executable, "-m", "slurmdag", "submit", "--json", path))
            ids = ",".join(out["jobs"].values())
            while _slurm("squeue", "-h", "-j", ids, "-o", "%i").strip():
                time.sleep(1)
            time.sleep(2)
            rows = [
                ln.split("|") for ln in _slurm("sacct", "-X", "-n", "-P", "-j", ids, "-o", "Start,End").splitlines()
            ]
            fmt = "%Y-%m-%dT%H:%M:%S"
            starts = [datetime.strptime(r[0], fmt) for r in rows]
            ends = [datetime.strptime(r[1], fmt) for r in rows]
            results.append([label, (max(ends) - min(starts)).total_seconds()])
    length = {f"j{i}": s for i, s in enumerate(sleeps)}
    plan = compile_text(
        "name: b\nallocations:\n" + "".join(f"  - {{name: j{i}, entrypoint: x}}\n" for i in range(width))
    )
    results.append(["bound max(longest, sum/K)", bound(plan, length, k)])
    results.append(["greedy (simulated)", simulate_greedy(plan, length, k)])
    print(f"real cluster: fan-out of {width} sleeps {sleeps} s, max_concurrent={k} (seconds, first start to last end)")
    print(tabulate(results, headers=["mechanism", "makespan s"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.0, help="walltime estimates off by up to x(1+noise)")
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--width", type=int, default=10)
    args = ap.parse_args()
    if args.cluster:
        run_cluster(args.k, args.width)
    else:
        run_simulation(args.k, args.seeds, args.noise)


if __name__ == "__main__":
    main()
