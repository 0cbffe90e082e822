"""auto_array's effect on the controller: a 1 -> N -> 1 workflow (N distinct allocations, identical options) submitted
packed and unpacked in the same run, alternating; slurmctld's RPCs counted with `sdiag` around each submit.

    eval "$(docker-slurm/env)"          # the local cluster; root (sdiag)
    python benchmarks/bench_auto_array.py [--width 100] [--repeat 3] [--json out.json]

Per variant: REQUEST_SUBMIT_BATCH_JOB (one per sbatch), every client RPC of the submit (sdiag's own reading and the
messages slurmd sends about running jobs left out; the median over the runs removes other users' bursts on a shared
cluster), the submitting sbatch calls slurmdag ran (runner.command_observer, an exact cross-check; pre-flight's
`sbatch --help` is not counted: it sends no RPC) and the submit's wall time.
Each DAG is cancelled right after its submit. Target (issue 16): packed, at most 5 REQUEST_SUBMIT_BATCH_JOB for the
whole DAG (gate, first, the array, last = 4), against ~N+3 unpacked.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import cli_submit, median_counts, rpc_delta  # noqa: E402  (sdiag reading and in-process submit, reused)

SUBMIT = "REQUEST_SUBMIT_BATCH_JOB"
TARGET = 5


def fan(width: int, packed: bool) -> str:
    lines = [
        f"name: bench-auto-array-{'packed' if packed else 'plain'}",
        f"auto_array: {'true' if packed else 'false'}",
        "defaults: {partition: debug, walltime: 5, cpus_per_task: 1}",
        "allocations:",
        "  - {name: first, entrypoint: 'true'}",
    ]
    lines += [f"  - {{name: m{i:04d}, entrypoint: 'echo {i}', depends_on: [first]}}" for i in range(width)]
    lines.append("  - name: last\n    entrypoint: 'true'\n    depends_on:")
    lines += [f"      - m{i:04d}" for i in range(width)]
    return "\n".join(lines) + "\n"


def cancel(dag_id: str) -> None:
    from slurmdag.cli import app

    with contextlib.redirect_stdout(io.StringIO()):
        app(["cancel", dag_id], standalone_mode=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=100, help="siblings between the first and the last allocation")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default="cli")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="sdbench-auto-array-"))
    samples: dict[str, list[dict[str, int]]] = {"plain": [], "packed": []}
    sbatches: dict[str, list[int]] = {"plain": [], "packed": []}
    seconds: dict[str, list[float]] = {"plain": [], "packed": []}
    for _ in range(args.repeat):
        for variant in ("plain", "packed"):  # alternating, so load on the shared machine hits both alike
            text = fan(args.width, variant == "packed")
            dag: list[str] = []
            start = time.monotonic()
            delta, seen = rpc_delta(lambda text=text, dag=dag: dag.append(cli_submit(text, home, args.backend)))
            seconds[variant].append(time.monotonic() - start)
            samples[variant].append(delta)
            sbatches[variant].append(sum(1 for a in seen if a[0] == "sbatch" and "--help" not in a))  # not pre-flight's
            cancel(dag[0])
    result = {}
    rows = []
    for variant in ("plain", "packed"):
        counts = median_counts(samples[variant])
        result[variant] = {
            "submit_rpcs": counts.get(SUBMIT, 0),
            "client_rpcs": sum(counts.values()),
            "sbatch_calls": int(statistics.median(sbatches[variant])),
            "submit_seconds": round(statistics.median(seconds[variant]), 2),
            "rpc_by_type": counts,
            "samples": samples[variant],
        }
        r = result[variant]
        rows.append([variant, r["submit_rpcs"], r["client_rpcs"], r["sbatch_calls"], r["submit_seconds"]])
    met = result["packed"]["submit_rpcs"] <= TARGET
    result["target"] = {"packed_submit_rpcs_at_most": TARGET, "met": met}
    print(f"1 -> {args.width} -> 1, identical options; medians of {args.repeat} runs")
    print(tabulate(rows, headers=["variant", SUBMIT, "client RPCs", "sbatch calls", "submit s"]))
    print(f"target: packed {SUBMIT} <= {TARGET}: {'met' if met else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
