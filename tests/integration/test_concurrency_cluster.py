"""`max_concurrent: 2` on a 10-wide fan-out: Slurm's own start/end times never show more than 2 running at once,
with no slurmdag process alive after submit (the cap is compiled into dependency lanes)."""

from __future__ import annotations

import json
from datetime import datetime


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends sort before starts
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_max_concurrent_caps_a_fan_out(run_slurmdag, slurm, tmp_path):
    wf = tmp_path / "fan.yaml"
    wf.write_text(
        "name: sd6-fan\nmax_concurrent: 2\ndefaults: {walltime: 2}\nallocations:\n"
        "  - {name: root, entrypoint: 'true'}\n"
        + "".join(f"  - {{name: leaf{i}, entrypoint: 'sleep 3', depends_on: [root]}}\n" for i in range(10))
    )
    proc = run_slurmdag("submit", "--json", wf)
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)["jobs"]
    leaves = [jobs[f"leaf{i}"] for i in range(10)]
    rows = slurm.wait_until_done(leaves, timeout=240)
    assert {r["State"] for r in rows} == {"COMPLETED"}, rows
    fmt = "%Y-%m-%dT%H:%M:%S"
    intervals = [(datetime.strptime(r["Start"], fmt), datetime.strptime(r["End"], fmt)) for r in rows]
    assert len(intervals) == 10
    assert _max_overlap(intervals) == 2, sorted(intervals)  # never more than 2, and the 2 lanes are both used
