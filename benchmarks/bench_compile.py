"""Validate + compile time and peak memory for generated workflows (run on demand, prints a table).

    python benchmarks/bench_compile.py [--sizes 100,1000,10000] [--repeat 3]

Shapes: layered (10 wide layers, each node depending on two nodes of the layer above), fan-out-fan-in (one root,
N-2 parallel nodes, one sink depending on all of them) and chain (each node depends on the one before). Times
include YAML parsing; memory is tracemalloc's peak in a separate run. Target: 10,000 layered in <= 3 s and <= 12x
the 1,000 time.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from tabulate import tabulate

from slurmdag.compiler.compile import compile_text


def layered(n: int, width: int = 10) -> str:
    lines = ["name: layered", "defaults: {partition: debug, walltime: 1h}", "allocations:"]
    for i in range(n):
        above = (i // width - 1) * width  # first node of the layer above
        deps = "" if i < width else f", depends_on: [n{i - width}, {{n{above + (i + 1) % width}: any}}]"
        lines.append(f"  - {{name: n{i}, entrypoint: 'python step.py --index={i}', nodes: 1{deps}}}")
    return "\n".join(lines) + "\n"


def fan(n: int) -> str:
    lines = ["name: fan", "defaults: {walltime: 30}", "allocations:", "  - {name: root, entrypoint: 'python split.py'}"]
    lines += [f"  - {{name: w{i}, entrypoint: 'python work.py {i}', depends_on: [root]}}" for i in range(n - 2)]
    lines.append("  - name: sink\n    entrypoint: 'python merge.py'\n    depends_on:")
    lines += [f"      - w{i}" for i in range(n - 2)]
    return "\n".join(lines) + "\n"


def chain(n: int) -> str:
    lines = ["name: chain", "allocations:", "  - {name: c0, entrypoint: 'echo 0', walltime: 5}"]
    lines += [
        f"  - {{name: c{i}, entrypoint: 'echo {i}', walltime: 5, depends_on: [{{c{i - 1}: success}}]}}"
        for i in range(1, n)
    ]
    return "\n".join(lines) + "\n"


SHAPES = {"layered": layered, "fan-out-fan-in": fan, "chain": chain}


def measure(text: str, n: int, repeat: int) -> tuple[float, float, int]:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = compile_text(text, "bench.yaml", max_allocations=n)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    compile_text(text, "bench.yaml", max_allocations=n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, len(plan.jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, times = [], {}
    for shape, make in SHAPES.items():
        for n in sizes:
            text = make(n)
            secs, mib, jobs = measure(text, n, args.repeat)
            times[(shape, n)] = secs
            ratio = f"{secs / times[(shape, n // 10)]:.1f}x" if (shape, n // 10) in times else ""
            rows.append([shape, n, jobs, f"{secs:.3f}", ratio, f"{secs / n * 1e6:.0f}", f"{mib:.1f}"])
    print(
        tabulate(
            rows, headers=["shape", "allocations", "jobs", "seconds (best)", "vs 10x fewer", "us/alloc", "peak MiB"]
        )
    )
    if ("layered", 10000) in times and ("layered", 1000) in times:
        t10k, t1k = times[("layered", 10000)], times[("layered", 1000)]
        ok = t10k <= 3 and t10k <= 12 * t1k
        print(
            f"\ntarget 10,000 layered <= 3 s and <= 12x 1,000: {t10k:.2f} s, {t10k / t1k:.1f}x -> "
            f"{'met' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
