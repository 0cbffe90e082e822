"""Porting against the real cluster: Slurm must see the same job whether it reads the original script or ours.

(1) every corpus script is submitted held as written and as rebuilt from the parsed directives (and from the
    merged options slurmdag would apply); `scontrol show job -o` must show the same applied options.
(1b) the same through the product: a one-allocation workflow `script: <corpus script>` is compiled with
    `slurmdag compile`, and the compiled .sbatch must get the same job as the original (also with workflow overrides,
    compared with the original given those options on sbatch's command line).
(2) the bash chain fixture runs as written, then imported and submitted with `slurmdag submit`; both runs must
    respect the same partial order (no child starts before its parents end; the same jobs run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurmdag.compiler.script_directives import read_script_file
from slurmdag.compiler.script_merge import merge, rebuild_script
from slurmdag.porting.importer import import_files

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# written for these tests, then real scripts from HPC centres' docs and research repositories (each names its source)
CORPUS = sorted((FIXTURES / "batch-scripts").glob("*.sbatch")) + sorted(
    (FIXTURES / "batch-scripts" / "real").glob("*.sbatch")
)
REPO = Path(__file__).resolve().parents[2]

# Fields that differ for every job (times, ids, the script's own path) or that say nothing about options.
VOLATILE = {
    "JobId", "ArrayJobId", "JobName", "SubmitTime", "EligibleTime", "AccrueTime", "StartTime", "EndTime",
    "Deadline", "LastSchedEval", "Command", "RunTime", "SuspendTime", "SecsPreSuspend", "PreemptEligibleTime",
    "PreemptTime", "Priority", "Reason", "BatchHost",
    "SubmitLine",  # Slurm 25.11+: the sbatch command line itself, which differs by construction
}  # fmt: skip
# Fields the comparison always covers.
CHECKED = {
    "NumNodes", "NumCPUs", "NumTasks", "CPUs/Task", "TimeLimit", "Partition", "TRES", "Features", "StdOut",
    "StdErr", "OverSubscribe", "Requeue", "WorkDir", "Nice",
}  # fmt: skip
# Fields that only appear when a script sets the option: they must then be in the comparison too.
FIELD_OF_OPTION = {
    "mail-type": "MailType", "mail-user": "MailUser", "comment": "Comment", "mem-per-cpu": "MinMemoryCPU",
    "mem": "MinMemoryNode", "array": "ArrayTaskId",
}  # fmt: skip


def expected_fields(options) -> set[str]:
    """scontrol's fields for these options (it shows MailUser only when there is a mail type)."""
    out = CHECKED | {FIELD_OF_OPTION[o] for o in options if o in FIELD_OF_OPTION}
    return out - ({"MailUser"} if "mail-type" not in options else set())


def _slurm_ready() -> bool:
    if shutil.which("sbatch") is None:
        return False
    try:
        r = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "UP" in r.stdout


@pytest.fixture(scope="module")
def cluster():
    if not os.environ.get("SLURM_CONF"):
        env_script = REPO / "docker-slurm" / "env"
        if env_script.exists():
            out = subprocess.run([str(env_script)], capture_output=True, text=True).stdout
            for m in re.finditer(r"export (\w+)=(\S+)", out):
                os.environ[m.group(1)] = m.group(2).strip("'\"")
    if not _slurm_ready():
        pytest.fail('the local Slurm cluster is not up: run docker-slurm/up and eval "$(docker-slurm/env)"')


@pytest.fixture
def workdir(request, tmp_path):
    """A directory the cluster's nodes can see (the `shared_tmp` fixture when the suite provides one)."""
    try:
        return Path(request.getfixturevalue("shared_tmp"))
    except pytest.FixtureLookupError:
        return tmp_path


def sh(argv, cwd=None, check=True, **kw):
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def sbatch_held(script: Path, cwd: Path, extra=()) -> tuple[str | None, str]:
    """(job id, "") or (None, sbatch's error message)."""
    r = sh(["sbatch", "--hold", "--parsable", *extra, str(script)], cwd=cwd, check=False)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return r.stdout.strip().split(";")[0], ""


def scontrol_fields(job_id: str) -> dict[str, str]:
    out = sh(["scontrol", "show", "job", "-o", job_id]).stdout.splitlines()[0]
    fields = {}
    for item in re.split(r" (?=[A-Za-z][A-Za-z0-9/:_]*=)", out.strip()):
        k, _, v = item.partition("=")
        fields[k] = v
    return fields


def normalized(fields: dict[str, str], job_id: str, script: Path, cwd: Path | None = None) -> dict[str, str]:
    aid = fields.get("ArrayJobId", job_id)
    if "ReqTRES" in fields:  # Slurm 24.11+ shows what 22.05 calls TRES as ReqTRES (and adds AllocTRES)
        fields = {("TRES" if k == "ReqTRES" else k): v for k, v in fields.items()}
    out = {}
    for k, v in fields.items():
        if k in VOLATILE:
            continue
        # paths first: the submit folder's own name may contain digits that equal the job id (pytest-128)
        v = v.replace(str(script), "<script>")
        if cwd is not None:
            v = v.replace(str(cwd), "<cwd>")
        for jid in {job_id, aid}:
            # a job id stands alone (`slurm-300.out`, `300_4`), never inside a value such as `300M`
            v = re.sub(rf"(?<![0-9A-Za-z]){jid}(?![0-9A-Za-z])", "<id>", v)
        out[k] = v
    out["is_array"] = str("ArrayJobId" in fields)
    return out


# What this cluster lacks (GPUs, node features, licenses, reservations, other clusters and partitions): a script asking
# for it is refused by sbatch. Given the same value on both sbatch command lines (which beats #SBATCH lines), the
# rest of the script is compared too. Options that cannot be cleared this way leave only the refusals to compare.
SITE_OVERRIDES = {
    "partition": "--partition=debug", "clusters": "--clusters=slurmdag", "constraint": "--constraint=",
    "licenses": "--licenses=", "gres": "--gres=none", "gpus": "--gpus=", "gpus-per-node": "--gpus-per-node=",
    "gpus-per-task": "--gpus-per-task=", "gpus-per-socket": "--gpus-per-socket=", "nodelist": "--nodelist=",
    "reservation": "--reservation=",
}  # fmt: skip
NOT_CLEARABLE = {"ntasks-per-gpu", "cpus-per-gpu", "mem-per-gpu"}


def site_overrides(script: Path) -> list[str]:
    return [flag for opt, flag in SITE_OVERRIDES.items() if opt in read_script_file(str(script)).options()]


def compare_on_this_cluster(original: Path, rebuilt_text: str, cwd: Path, extra=(), rebuilt_extra=()):
    """compare_submissions as the script is, then (if sbatch refused both) with the site overrides on both."""
    kind, info = compare_submissions(original, rebuilt_text, cwd, extra, rebuilt_extra)
    site = site_overrides(original)
    if kind == "same" or not site:
        return kind, info
    kind, info = compare_submissions(original, rebuilt_text, cwd, [*extra, *site], [*rebuilt_extra, *site])
    if kind != "same":
        # refused again, identically: only for what no command-line value can clear
        assert NOT_CLEARABLE & set(read_script_file(str(original)).options()), info
    return kind, info


def time_override(d) -> str:
    """Minutes for a workflow `walltime` override: 7, or 600 where the script sets a --time-min (2 h in the corpus)."""
    return "600" if "time-min" in d.options() else "7"


def time_limit(minutes: str) -> str:
    return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}:00"


def owned_cli(script: Path) -> list[str]:
    """The job name (and comment) slurmdag gives on its command line; a script's own comment is kept, so it is
    compared, not overridden."""
    has_comment = "comment" in read_script_file(str(script)).options()
    return ["--job-name=probe"] + ([] if has_comment else ["--comment=probe"])


def refused_like_sbatch(script: Path, cwd: Path) -> bool:
    """A script whose #SBATCH block sbatch itself refuses: slurmdag must refuse it too, at the same line."""
    d = read_script_file(str(script))
    if not d.problems:
        return False
    job, err = sbatch_held(script, cwd)
    assert job is None and "Invalid directive" in err, (job, err)
    bad = next(p for p in d.problems if "not an option" in p.message)
    assert bad.message.split(": ")[-1].strip("'") in err
    return True


def compare_submissions(original: Path, rebuilt_text: str, cwd: Path, extra=(), rebuilt_extra=()):
    """Submit both held; return ("same", fields) or ("rejected", message); raise on any difference."""
    rebuilt = cwd / f"rebuilt-{original.name}"
    rebuilt.write_text(rebuilt_text)
    a, a_err = sbatch_held(original, cwd, extra)
    b, b_err = sbatch_held(rebuilt, cwd, rebuilt_extra)
    try:
        if a is None or b is None:
            assert a is None and b is None, f"{original.name}: only one was rejected: {a_err!r} / {b_err!r}"
            assert a_err == b_err, original.name
            return "rejected", a_err
        fa = normalized(scontrol_fields(a), a, original, cwd)
        fb = normalized(scontrol_fields(b), b, rebuilt, cwd)
        diff = {k: (fa.get(k), fb.get(k)) for k in set(fa) | set(fb) if fa.get(k) != fb.get(k)}
        assert not diff, f"{original.name}: Slurm applied different options: {diff}"
        return "same", fa
    finally:
        ids = [i for i in (a, b) if i]
        if ids:
            sh(["scancel", *ids], check=False)


@pytest.mark.parametrize("script", CORPUS, ids=lambda p: p.name)
def test_rebuilt_script_gets_the_same_job_as_the_original(cluster, workdir, script):
    if refused_like_sbatch(script, workdir):
        return
    d = read_script_file(str(script))
    # every directive as parsed, owned ones included: tests the reader itself. Without a name of its own a job is
    # named after its script file (which differs here), so both get the same one (%x in --output depends on it)
    named = [] if "job-name" in d.effective() else ["--job-name=probe"]
    kind, info = compare_on_this_cluster(script, rebuild_script(d, d.effective()), workdir, named, named)
    if kind == "same":
        wanted = expected_fields(d.effective())
        assert wanted <= set(info), f"fields missing from scontrol: {wanted - set(info)}"

    # what slurmdag applies: merged options (no owned ones) plus the task group; the job name (and comment, unless the
    # script has its own) come from slurmdag's own command line, so both submissions get the same ones there
    m = merge(d, {})
    owned = owned_cli(script)
    compare_on_this_cluster(script, rebuild_script(d, m.options, m.array), workdir, owned, owned)

    # a workflow override must win exactly like an sbatch command-line option beats the script's #SBATCH line (a
    # longer time where the script asks for a minimum time, which sbatch wants below the limit)
    minutes = time_override(d)
    override = {"time": minutes, "mem": "300M"}
    m = merge(d, override)
    rebuilt = rebuild_script(d, m.options, m.array)
    site = site_overrides(script)
    if {"mem-per-cpu", "mem-per-gpu"} & set(d.options()):
        # sbatch itself refuses --mem on the command line over a script's --mem-per-cpu; merge replaces it instead
        _, err = sbatch_held(script, workdir, [*owned, *site, f"--time={minutes}", "--mem=300M"])
        assert "mutually exclusive" in err
        path = workdir / f"merged-{script.name}"
        path.write_text(rebuilt)
        job, err = sbatch_held(path, workdir, [*owned, *site])
        assert job, err
        try:
            fields = scontrol_fields(job)
        finally:
            sh(["scancel", job], check=False)
        assert fields["MinMemoryNode"] == "300M" and "MinMemoryCPU" not in fields
        assert fields["TimeLimit"] == time_limit(minutes)
    else:
        compare_on_this_cluster(script, rebuilt, workdir, [*owned, f"--time={minutes}", "--mem=300M"], owned)


# ---------------------------------------------------------------- `script:` allocations through `slurmdag compile`

# slurmdag gives every job its own name and comment on sbatch's command line; the test gives both submissions the
# same ones there, so what is compared is everything else
OWNED_CLI = ["--job-name=probe", "--comment=probe"]


def compile_workflow(script: Path, workdir: Path, keys: str = ""):
    """`slurmdag compile` a workflow whose one allocation is `script: <script>` (plus `keys`)."""
    folder = workdir / f"wf-{script.stem}"
    folder.mkdir(exist_ok=True)
    (folder / "wf.yaml").write_text(f"name: probe\nallocations:\n  - {{name: a, script: '{script}'{keys}}}\n")
    return sh([sys.executable, "-m", "slurmdag", "compile", "wf.yaml", "-o", "out"], cwd=folder, check=False)


def compiled_script(script: Path, workdir: Path, keys: str = "") -> str:
    """The .sbatch text `slurmdag compile` writes for that workflow."""
    r = compile_workflow(script, workdir, keys)
    assert r.returncode == 0, r.stderr
    return (workdir / f"wf-{script.stem}" / "out" / "a.sbatch").read_text()


@pytest.mark.parametrize("script", CORPUS, ids=lambda p: p.name)
def test_compiled_script_allocation_gets_the_same_job_as_the_original(cluster, workdir, script):
    if refused_like_sbatch(script, workdir):
        bad = next(p for p in read_script_file(str(script)).problems)
        r = compile_workflow(script, workdir)
        assert r.returncode == 2 and f"{script}:{bad.line}:{bad.col}: " in r.stderr, r.stderr
        return
    owned = owned_cli(script)
    kind, info = compare_on_this_cluster(script, compiled_script(script, workdir), workdir, owned, owned)
    if kind == "same":
        wanted = expected_fields(read_script_file(str(script)).options())
        assert wanted <= set(info), f"fields missing from scontrol: {wanted - set(info)}"


@pytest.mark.parametrize("script", CORPUS, ids=lambda p: p.name)
def test_workflow_keys_win_like_sbatch_command_line_options(cluster, workdir, script):
    if refused_like_sbatch(script, workdir):
        return
    # the memory key of the script's own kind: sbatch refuses --mem on its command line over #SBATCH --mem-per-cpu
    per_cpu = "mem-per-cpu" in read_script_file(str(script)).options()
    minutes = time_override(read_script_file(str(script)))
    keys, flags = (
        (f", walltime: {minutes}, mem_per_cpu: 150M", [f"--time={minutes}", "--mem-per-cpu=150M"])
        if per_cpu
        else (f", walltime: {minutes}, mem: 300M", [f"--time={minutes}", "--mem=300M"])
    )
    compiled = compiled_script(script, workdir, keys)
    owned = owned_cli(script)
    kind, info = compare_on_this_cluster(script, compiled, workdir, [*owned, *flags], owned)
    if kind == "same":
        assert info["TimeLimit"] == time_limit(minutes)
        assert info.get("MinMemoryCPU" if per_cpu else "MinMemoryNode") == ("150M" if per_cpu else "300M")


def test_workflow_mem_replaces_a_script_mem_per_cpu(cluster, workdir):
    # sbatch itself refuses the mix; the workflow's choice replaces the script's, and Slurm sees only --mem
    script = FIXTURES / "batch-scripts" / "05_mem_per_cpu.sbatch"
    assert "mem-per-cpu" in read_script_file(str(script)).options()
    path = workdir / "merged-05.sbatch"
    path.write_text(compiled_script(script, workdir, ", mem: 300M"))
    job, err = sbatch_held(path, workdir, OWNED_CLI)
    assert job, err
    try:
        fields = scontrol_fields(job)
    finally:
        sh(["scancel", job], check=False)
    assert fields["MinMemoryNode"] == "300M" and "MinMemoryCPU" not in fields


def test_python_script_allocation_gets_the_same_job_as_the_original(cluster, workdir):
    original = workdir / "report.py"
    original.write_text(
        "#!/usr/bin/env python3\n#SBATCH --ntasks=2 --mem=150M\n#SBATCH -t 3 -o py-%j.out\n# a comment\nprint('hi')\n"
    )
    original.chmod(0o755)
    compiled = compiled_script(original, workdir)
    assert compiled.startswith("#!/usr/bin/env python3\n") and compiled.endswith("\nprint('hi')\n")
    kind, info = compare_submissions(original, compiled, workdir, OWNED_CLI, OWNED_CLI)
    assert kind == "same" and info["NumTasks"] == "2" and info["MinMemoryNode"] == "150M"


# ---------------------------------------------------------------- the bash chain


def sacct_rows(ids: list[str] | None = None, workdir: Path | None = None, since: str = "") -> list[dict]:
    argv = ["sacct", "-X", "-n", "-P", "-o", "JobID,JobIDRaw,JobName,State,Start,End,NodeList,WorkDir"]
    argv += ["-S", since] if since else []
    argv += ["-j", ",".join(ids)] if ids else ["-a"]
    rows = []
    for line in sh(argv).stdout.splitlines():
        jid, raw, name, state, start, end, nodes, wd = line.split("|")
        if workdir is not None and Path(wd) != workdir:
            continue
        rows.append(
            {
                "id": jid,
                "raw": raw,
                "name": name,
                "state": state,
                "start": start,
                "end": end,
                "ran": nodes not in ("", "None assigned"),
            }
        )
    return rows


def wait_for(predicate, what: str, limit: float = 240.0):
    # polls until Slurm reports the state; the limit only stops a hung cluster from hanging the suite
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED")


def by_node(rows: list[dict], name_of) -> dict[str, dict]:
    """Per workflow node: did any task run, earliest start, latest end (array tasks folded together)."""
    out: dict[str, dict] = {}
    for r in rows:
        n = name_of(r)
        if n is None:
            continue
        e = out.setdefault(n, {"ran": False, "start": None, "end": None, "states": []})
        e["states"].append(r["state"])
        if r["ran"]:
            e["ran"] = True
            e["start"] = min(filter(None, [e["start"], r["start"]]))
            e["end"] = max(filter(None, [e["end"], r["end"]]))
    return out


def check_order(nodes: dict[str, dict], workflow: dict, label: str) -> None:
    for a in workflow["allocations"]:
        child = nodes[a["name"]]
        if not child["ran"]:
            continue
        all_parents = [next(iter(p)) if isinstance(p, dict) else p for p in a.get("depends_on", [])]
        for p in all_parents:
            assert nodes[p]["ran"] and nodes[p]["end"] <= child["start"], (
                f"{label}: {a['name']} started before {p} ended"
            )
        any_parents = [next(iter(p)) if isinstance(p, dict) else p for p in a.get("depends_on_any", [])]
        if any_parents:
            ends = [nodes[p]["end"] for p in any_parents if nodes[p]["ran"]]
            assert ends and min(ends) <= child["start"], f"{label}: {a['name']} started before any parent ended"


def test_bash_chain_and_its_import_run_in_the_same_order(cluster, workdir, request):
    src = FIXTURES / "bash-chains"
    orig_dir = workdir / "original"
    shutil.copytree(src, orig_dir)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))

    # --- the original chain, as its author runs it
    sh(["bash", "pipeline.sh"], cwd=orig_dir)
    imported = import_files([str(orig_dir / "pipeline.sh")], str(orig_dir / "workflow.yaml"))
    assert imported.warnings == []
    workflow = imported.workflow
    names = {a["name"] for a in workflow["allocations"]}

    def orig_rows():
        return [r for r in sacct_rows(workdir=orig_dir, since=since) if r["name"] in names]

    def settled():
        rows = orig_rows()
        # every job but the failure handler (whose parent succeeds: it stays pending forever) has ended
        done = {r["name"] for r in rows if r["state"].split()[0] in TERMINAL}
        return rows if names - {"on-failure"} <= done else None

    def still_pending() -> dict[str, str]:
        # sacct leaves out jobs that never became eligible in its time window; squeue still has them
        out = sh(["squeue", "-h", "-t", "PD", "-o", "%i|%j|%Z"]).stdout.splitlines()
        return {i: n for i, n, wd in (ln.split("|") for ln in out) if Path(wd) == orig_dir}

    try:
        rows = wait_for(settled, "the original chain")
    finally:
        pending = still_pending()
        if pending:
            sh(["scancel", *pending], check=False)
    original = by_node(rows, lambda r: r["name"])
    for name in set(pending.values()) - set(original):
        original[name] = {"ran": False, "start": None, "end": None, "states": ["PENDING"]}

    # --- the imported workflow, through slurmdag
    if sh([sys.executable, "-m", "slurmdag", "submit", "--help"], check=False).returncode != 0:
        pytest.fail("`slurmdag submit` is not available yet")
    dag_dir = workdir / "imported"
    shutil.copytree(src, dag_dir)
    yaml_path = dag_dir / "workflow.yaml"
    result = import_files([str(dag_dir / "pipeline.sh")], str(yaml_path))
    yaml_path.write_text(result.to_yaml())
    env = dict(os.environ)
    env.setdefault("SLURMDAG_HOME", str(workdir / "slurmdag-home"))
    sub = sh([sys.executable, "-m", "slurmdag", "submit", str(yaml_path)], cwd=dag_dir, env=env)
    dag_id = re.search(r"DAG ([0-9a-f]{8})", sub.stdout + sub.stderr).group(1)

    def status():
        r = sh([sys.executable, "-m", "slurmdag", "status", dag_id, "--json"], cwd=dag_dir, env=env)
        doc = json.loads(r.stdout)
        return doc if doc["state"] in ("Completed", "Failed", "Cancelled") else None

    doc = wait_for(status, "the imported DAG")
    job_ids = {}
    for a in doc["allocations"]:
        for t in a.get("tasks") or [{"job_id": a["job_id"]}]:
            if t.get("job_id"):
                job_ids[str(t["job_id"])] = a["name"]
    array_base = {jid.split("_")[0]: n for jid, n in job_ids.items()}

    def name_of(r):
        return job_ids.get(r["id"]) or array_base.get(r["id"].split("_")[0])

    rows = wait_for(
        lambda: (lambda rs: rs if all(r["state"].split()[0] in TERMINAL for r in rs) else None)(
            sacct_rows(sorted(array_base), since=since)
        ),
        "sacct to catch up",
    )
    ported = by_node(rows, name_of)

    assert set(original) == set(ported) == names
    assert {n for n, e in original.items() if e["ran"]} == {n for n, e in ported.items() if e["ran"]}
    assert {n for n, e in original.items() if e["ran"]} == names - {"on-failure"}
    check_order(original, workflow, "original chain")
    check_order(ported, workflow, "slurmdag")


# ---------------------------------------------------------------- a script's own --comment, through submit


def test_a_scripts_own_comment_reaches_slurm_and_slurmdag_still_follows_the_dag(cluster, workdir):
    # NERSC's variable-time jobs read the total time from the job's comment: a port must keep it
    folder = workdir / "own-comment"
    folder.mkdir()
    (folder / "vtj.sbatch").write_text(
        "#!/bin/bash\n#SBATCH --comment=96:00:00  #desired timelimit\n#SBATCH -t 2\nsleep 1\n"
    )
    (folder / "wf.yaml").write_text(
        "name: vtj\nallocations:\n  - {name: run, script: vtj.sbatch}\n"
        "  - {name: after, entrypoint: 'true', depends_on: [run], walltime: 2}\n"
    )
    env = dict(os.environ, SLURMDAG_HOME=str(workdir / "slurmdag-home"))
    sub = sh([sys.executable, "-m", "slurmdag", "submit", "wf.yaml"], cwd=folder, env=env)
    dag_id = re.search(r"DAG ([0-9a-f]{8})", sub.stdout + sub.stderr).group(1)

    def status():
        r = sh([sys.executable, "-m", "slurmdag", "status", dag_id, "--json"], cwd=folder, env=env)
        return json.loads(r.stdout)

    ids = {a["name"]: str(a["job_id"]) for a in status()["allocations"]}
    comments = {name: scontrol_fields(job)["Comment"].strip() for name, job in ids.items()}
    assert comments == {"run": "96:00:00", "after": f"slurmdag:{dag_id}:after"}
    doc = wait_for(
        lambda: (lambda d: d if d["state"] in ("Completed", "Failed", "Cancelled") else None)(status()), "dag"
    )
    assert doc["state"] == "Completed"
    # slurmdbd can record a job's end a few seconds before its name (JobName "allocation" meanwhile)
    rows = wait_for(
        lambda: (lambda rs: rs if len(rs) == 2 and all(r["name"] != "allocation" for r in rs) else None)(
            sacct_rows(list(ids.values()))
        ),
        "sacct to record both jobs with their names",
    )
    assert {r["name"]: r["state"] for r in rows} == {f"sd-{dag_id}-run": "COMPLETED", f"sd-{dag_id}-after": "COMPLETED"}
