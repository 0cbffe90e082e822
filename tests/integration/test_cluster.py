"""Issue 2 acceptance: the project's own multi-node Slurm test cluster (docker-slurm/).

Asserted on Slurm's own view (sinfo, srun, squeue, sacct). The down/up test is the
last one in this file and brings the cluster back up; within one pytest run the files
run one after another, so no other test overlaps it.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest

DOCKER_SLURM = Path(__file__).resolve().parents[2] / "docker-slurm"

USABLE = {"idle", "mix", "mixed", "alloc", "allocated"}


def _name(tag: str) -> str:
    return f"t2-{tag}-{uuid.uuid4().hex[:6]}"


def _recorded_pids(run_dir: Path) -> dict[str, int]:
    """prog label -> PID from the cluster's PID files."""
    pids = {}
    for f in sorted((run_dir / "pid").glob("*.pid")):
        text = f.read_text().strip()
        if text.isdigit():
            pids[f.stem] = int(text)
    return pids


def _alive_as(pid: int, prog: str) -> bool:
    """True when PID is a live process running PROG (not a zombie, not a reused PID)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, IndexError):
        return False
    return os.path.basename(argv0) == prog


def _prog(label: str) -> str:
    return "slurmd" if label.startswith("slurmd-") else label


def test_sinfo_shows_three_usable_nodes(slurm):
    out = slurm.run("sinfo", "-h", "-N", "-p", "debug", "-o", "%N %t %c").stdout
    nodes = {}
    for line in out.splitlines():
        name, state, cpus = line.split()
        nodes[name] = (state, cpus)
    assert len(nodes) >= 3, out
    # idle when nobody else uses the cluster; mix/alloc when other tests' jobs run on it.
    # A trailing '*' (not responding), down, drain, unk ... are failures.
    bad = {n: s for n, (s, _) in nodes.items() if s not in USABLE}
    assert not bad, f"nodes not usable: {bad}\n{out}"
    assert all(c == "4" for _, c in nodes.values()), out


def test_srun_on_three_nodes_prints_three_hostnames(slurm):
    out = slurm.run("srun", "-N3", "--ntasks-per-node=1", "-J", _name("srun"), "hostname", timeout=300).stdout.split()
    assert len(out) == 3, out
    assert len(set(out)) == 3, out
    assert all(re.fullmatch(r"node\d+", h) for h in out), out


def _config(slurm) -> dict[str, str]:
    out = slurm.run("scontrol", "show", "config").stdout
    return {k.strip(): v.strip() for k, sep, v in (ln.partition("=") for ln in out.splitlines()) if sep}


def test_every_version_selects_with_cons_tres_and_only_22_05_still_ships_cons_res(slurm):
    """docs/compatibility.md row 8: select/cons_res is gone since 23.11, so the one template every version's cluster
    uses says select/cons_tres; the controller runs with it (a job was just placed on three nodes above)."""
    config = _config(slurm)
    assert config["SelectType"] == "select/cons_tres", config.get("SelectType")
    plugins = Path(config["PluginDir"])
    assert (plugins / "select_cons_tres.so").exists(), plugins
    assert (plugins / "select_cons_res.so").exists() == (slurm.version < (23, 11)), (slurm.version, plugins)


def test_slurmctld_logs_the_missing_http_parser_from_25_11_on_and_runs_jobs_regardless(slurm):
    """docs/compatibility.md row 10: 25.11+ built without libhttp-parser-dev logs an error at every start; only
    slurmrestd needs the parser: the controller answers and runs a job all the same."""
    log = (slurm.run_dir / "log" / "slurmctld.log").read_text(errors="replace")
    logged = "cannot create http_parser context" in log  # 25.11 also logs a url_parser line, 26.05 only this one
    assert logged == (slurm.version >= (25, 11)), (slurm.version, logged)
    assert "UP" in slurm.run("scontrol", "ping").stdout
    job = slurm.submit("-J", _name("http"), "-o", "/dev/null", "--wrap", "true")
    rows = slurm.wait_until_done([job], timeout=300)
    assert rows[0]["State"] == "COMPLETED", rows


def test_finished_jobs_show_in_sacct_with_exit_codes(slurm, shared_tmp: Path):
    name_ok, name_bad = _name("ok"), _name("bad")
    marker = shared_tmp / "ran"
    ok = slurm.submit("-J", name_ok, "-o", "/dev/null", "--wrap", f"hostname > {marker}")
    bad = slurm.submit("-J", name_bad, "-o", "/dev/null", "--wrap", "exit 3")
    rows = {r["JobID"]: r for r in slurm.wait_until_done([ok, bad])}
    assert rows[ok]["JobName"] == name_ok
    assert rows[ok]["State"] == "COMPLETED" and rows[ok]["ExitCode"] == "0:0", rows[ok]
    assert rows[bad]["State"] == "FAILED" and rows[bad]["ExitCode"] == "3:0", rows[bad]
    # the job ran on a node and wrote into the shared tmp dir
    assert re.fullmatch(r"node\d+", rows[ok]["NodeList"]), rows[ok]
    assert marker.read_text().strip() == rows[ok]["NodeList"]


def test_second_up_is_a_noop(slurm):
    before = _recorded_pids(slurm.run_dir)
    assert {"munged", "slurmctld", "slurmd-node1", "slurmd-node2", "slurmd-node3"} <= set(before), before
    proc = subprocess.run([str(DOCKER_SLURM / "up")], text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "nothing changed" in proc.stdout, proc.stdout + proc.stderr
    assert _recorded_pids(slurm.run_dir) == before
    assert all(_alive_as(pid, _prog(label)) for label, pid in before.items()), before


def test_afterok_chain_runs_in_order(slurm):
    parent = slurm.submit("-J", _name("parent"), "-o", "/dev/null", "--wrap", "sleep 2")
    child = slurm.submit("-J", _name("child"), "-o", "/dev/null", f"--dependency=afterok:{parent}", "--wrap", "true")
    rows = {r["JobID"]: r for r in slurm.wait_until_done([parent, child])}
    assert rows[parent]["State"] == "COMPLETED", rows
    assert rows[child]["State"] == "COMPLETED", rows
    p_end = datetime.fromisoformat(rows[parent]["End"])
    c_start = datetime.fromisoformat(rows[child]["Start"])
    assert p_end <= c_start, rows


def test_failed_parent_never_runs_afterok_child(slurm):
    parent = slurm.submit("-J", _name("fparent"), "-o", "/dev/null", "--wrap", "exit 1")
    child = slurm.submit("-J", _name("fchild"), "-o", "/dev/null", f"--dependency=afterok:{parent}", "--wrap", "true")
    slurm.wait_until_done([parent])

    def child_blocked():
        rows = slurm.squeue([child])
        if not rows:
            return None
        r = rows[0]
        never = r["State"] == "PENDING" and r["Reason"] == "DependencyNeverSatisfied"
        # a cluster with DependencyParameters=kill_invalid_depend cancels it instead
        return r if never or r["State"] == "CANCELLED" else None

    row = slurm.wait_for(child_blocked, timeout=60, what=f"child {child} to be blocked")
    try:
        acct = slurm.sacct([parent, child])
        by_id = {r["JobID"]: r for r in acct}
        assert by_id[parent]["State"] == "FAILED", acct
        assert by_id[child]["NodeList"] == "None assigned", acct
        assert row["NodeList"] == "", row
    finally:
        slurm.run("scancel", child, check=False)
    final = slurm.wait_until_done([child])
    assert final[0]["State"].startswith("CANCELLED"), final
    assert final[0]["NodeList"] == "None assigned", final


def test_down_then_up_restarts_cleanly(slurm):
    """Runs last in this file. Kills running jobs of anyone using the cluster, so it is skipped
    when other jobs are running unless SLURMDAG_FORCE_DOWN_UP=1."""
    running = slurm.run("squeue", "-h", "-t", "R,CG", "-o", "%i").stdout.split()
    if running and os.environ.get("SLURMDAG_FORCE_DOWN_UP") != "1":
        pytest.skip(f"{len(running)} job(s) running on the shared cluster; set SLURMDAG_FORCE_DOWN_UP=1")
    before = _recorded_pids(slurm.run_dir)
    assert before
    up = [str(DOCKER_SLURM / "up")]
    try:
        down = subprocess.run([str(DOCKER_SLURM / "down")], text=True, capture_output=True, timeout=300)
        assert down.returncode == 0, down.stderr
        alive = {label: pid for label, pid in before.items() if _alive_as(pid, _prog(label))}
        assert not alive, f"still alive after down: {alive}"
        assert not list((slurm.run_dir / "pid").glob("*.pid"))
        netns = subprocess.run(["ip", "netns", "list"], text=True, capture_output=True).stdout
        # this cluster's namespaces only: clusters of other Slurm versions or instances may run alongside; their
        # names come from docker-slurm/version.sh (SLURM_VERSION, SLURM_CLUSTER_INSTANCE)
        prefix = subprocess.run(
            ["bash", "-c", 'SC_HOME="$1"; source "$1/version.sh" && printf %s "$NS_PREFIX"', "-", str(DOCKER_SLURM)],
            text=True,
            capture_output=True,
            check=True,
        ).stdout
        assert prefix.startswith("sdag"), prefix
        assert not re.search(rf"^{prefix}[0-9]+\b", netns, re.M), netns
        ping = slurm.run("scontrol", "ping", check=False, timeout=60)
        assert "is UP" not in ping.stdout, ping.stdout
        again = subprocess.run([str(DOCKER_SLURM / "down")], text=True, capture_output=True, timeout=300)
        assert again.returncode == 0 and again.stdout == "" and again.stderr == "", again
    finally:
        proc = subprocess.run(up, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = _recorded_pids(slurm.run_dir)
    assert set(after) == set(before)
    assert all(_alive_as(pid, _prog(label)) for label, pid in after.items()), after
    status = subprocess.run([str(DOCKER_SLURM / "status")], text=True, capture_output=True, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert len(set(slurm.run("srun", "-N3", "hostname", timeout=300).stdout.split())) == 3
