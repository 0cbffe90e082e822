"""Site policy on the real cluster: a DAG over the site's allocation cap is refused before anything reaches Slurm,
and a user's config cannot raise the cap. The site file is pointed at with SLURMDAG_SITE_POLICY, which slurmdag
honours only for root (these tests run as root), so the machine's /etc/slurmdag stays untouched for other tests."""

from __future__ import annotations

import uuid


def _workflow(path, tag: str, n: int) -> None:
    lines = [f"name: {tag}", "allocations:"]
    lines += [f"  - {{name: {tag}-a{i}, entrypoint: 'true', walltime: 1}}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def _jobs_named(slurm, tag: str) -> list[str]:
    live = slurm.run("squeue", "-h", "-t", "all", "-o", "%j").stdout.split()
    acct = slurm.run("sacct", "-X", "-n", "-P", "-a", "-o", "JobName", "-S", "now-1hour").stdout.split()
    return [n for n in live + acct if tag in n]


def test_cap_refuses_six_allocations_and_user_config_cannot_raise_it(run_slurmdag, slurm, tmp_path, slurmdag_home):
    tag = f"cap{uuid.uuid4().hex[:6]}"
    site = tmp_path / "policy.yaml"
    site.write_text("max_allocations: 5\n")
    xdg = tmp_path / "xdg"
    (xdg / "slurmdag").mkdir(parents=True)
    (xdg / "slurmdag" / "config.yaml").write_text("policy:\n  max_allocations: 100\n")
    env = {"SLURMDAG_SITE_POLICY": str(site), "XDG_CONFIG_HOME": str(xdg)}
    wf = tmp_path / "six.yaml"
    _workflow(wf, tag, 6)

    for cmd in (["validate", wf], ["submit", wf], ["submit", "--dry-run", wf]):
        proc = run_slurmdag(*cmd, env=env)
        assert proc.returncode == 2, (cmd, proc.stdout, proc.stderr)
        # refused while it is read, at the sixth allocation, naming the limit and who set it
        assert f"{wf}:" in proc.stderr and "the workflow has more than 5 allocations" in proc.stderr
        assert f"max_allocations = 5 (set by {site})" in proc.stderr
        # the user's attempt to loosen is ignored with a warning naming the limit
        assert "max_allocations 100 ignored" in proc.stderr
        assert "Traceback" not in proc.stderr

    shown = run_slurmdag("policy", "show", env=env)
    assert shown.returncode == 0
    row = next(ln for ln in shown.stdout.splitlines() if ln.startswith("max_allocations"))
    assert " 5 " in row and str(site) in row

    assert _jobs_named(slurm, tag) == []  # nothing reached Slurm
    assert not any((slurmdag_home / "dags").glob("*")) if (slurmdag_home / "dags").exists() else True

    five = tmp_path / "five.yaml"
    _workflow(five, tag, 5)
    assert run_slurmdag("validate", five, env=env).returncode == 0
