"""Site policy: parsing, tighten-only merging with provenance, and the check of a plan."""

from __future__ import annotations

import os

import pytest

from slurmdag.compiler.compile import compile_text
from slurmdag.model.errors import InputError
from slurmdag.policy import site_paths
from slurmdag.policy.limits import BUILTIN, check_plan, effective, parse_site, parse_user_config, read_policy

SITE = "/etc/slurmdag/policy.yaml"


def _plan(n: int = 3, extra: str = "", top: str = "", walltime: int = 30):
    allocs = "\n".join(f"  - {{name: a{i}, entrypoint: 'true', walltime: {walltime}{extra}}}" for i in range(n))
    return compile_text(f"name: w\n{top}allocations:\n{allocs}\n", file="w.yaml")


def test_defaults_without_files(tmp_path):
    policy = read_policy(tmp_path / "absent.yaml", tmp_path / "absent-user.yaml")
    assert policy.value("max_allocations") == 1000
    assert policy["max_allocations"].source == BUILTIN
    assert policy.value("max_concurrent") is None
    assert policy.warnings == []


def test_user_can_tighten_but_not_loosen():
    site_src = parse_site("max_allocations: 5\nallowed_partitions: [debug, big]\n", SITE)
    user_src, problems = parse_user_config(
        "policy:\n  max_allocations: 50\n  max_concurrent: 2\n  allowed_partitions: [debug, gpu]\n", "cfg.yaml"
    )
    assert problems == []
    policy = effective([site_src, user_src])
    assert policy.value("max_allocations") == 5 and policy["max_allocations"].source == SITE
    assert policy.value("max_concurrent") == 2 and policy["max_concurrent"].source == "cfg.yaml"
    assert policy.value("allowed_partitions") == frozenset({"debug"})
    messages = [w.message for w in policy.warnings]
    assert any("max_allocations 50 ignored" in m and "= 5 (set by /etc/slurmdag/policy.yaml)" in m for m in messages)
    assert any("allowed_partitions gpu ignored" in m for m in messages)
    assert policy.warnings[0].line == 2  # points at the value in the user's config


def test_min_poll_interval_tightens_upwards():
    policy = effective(
        [parse_site("min_poll_interval: 30\n", SITE), parse_user_config("policy: {min_poll_interval: 10}\n", "u")[0]]
    )
    assert policy.value("min_poll_interval") == 30
    assert "min_poll_interval 10 s ignored" in policy.warnings[0].message


def test_bad_site_file_refuses_with_position():
    with pytest.raises(InputError) as e:
        parse_site("max_alocations: 5\nmax_walltime: soon\n", SITE)
    text = str(e.value)
    assert f"{SITE}:1:1: unknown limit 'max_alocations'" in text and "did you mean 'max_allocations'" in text
    assert f"{SITE}:2:15:" in text and "invalid walltime" in text


def test_check_plan_names_limit_value_asked_and_source():
    policy = effective([parse_site("max_allocations: 5\nmax_walltime: 10m\nallowed_partitions: [debug]\n", SITE)])
    problems = check_plan(_plan(6, extra=", partition: gpu"), policy)
    text = "\n".join(str(p) for p in problems)
    assert "w: the workflow asks for 6 allocations, more than max_allocations = 5 (set by " + SITE + ")" in text
    assert "asks for 00:30:00, more than max_walltime = 00:10:00" in text
    assert "partition 'gpu', not in allowed_partitions = debug" in text
    assert check_plan(_plan(5, extra=", partition: debug", walltime=5), policy) == []


def test_nodes_and_array_limits():
    policy = effective([parse_site("max_nodes_per_allocation: 2\nmax_nodes_per_dag: 7\nmax_array_size: 4\n", SITE)])
    plan = compile_text(
        "name: w\nallocations:\n  - {name: a, entrypoint: x, nodes: 3}\n"
        "  - {name: b, entrypoint: x, nodes: 1, tasks: 5}\n",
        file="w.yaml",
    )
    text = "\n".join(p.message for p in check_plan(plan, policy))
    assert "'a' asks for 3 nodes, more than max_nodes_per_allocation = 2" in text
    assert "'b' asks for 5 tasks, more than max_array_size = 4" in text
    assert "asks for 8 nodes in total, more than max_nodes_per_dag = 7" in text


def test_workflow_max_concurrent_is_a_tightening_source(tmp_path):
    plan = _plan(2, top="max_concurrent: 4\n")
    assert plan.max_concurrent == 4
    (tmp_path / "site.yaml").write_text("max_concurrent: 3\n")
    from slurmdag.policy.limits import workflow_source

    policy = read_policy(tmp_path / "site.yaml", None, workflow_source(plan))
    assert policy.value("max_concurrent") == 3
    assert "max_concurrent 4 ignored" in policy.warnings[0].message


def test_max_concurrent_must_be_positive():
    with pytest.raises(InputError) as e:
        _plan(1, top="max_concurrent: 0\n")
    assert "w.yaml:2:17: `max_concurrent` must be at least 1" in str(e.value)


def test_site_path_override_only_for_root(monkeypatch):
    monkeypatch.setenv(site_paths.ROOT_OVERRIDE_ENV, "/tmp/elsewhere.yaml")
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert str(site_paths.site_policy_path()) == site_paths.SITE_POLICY_PATH
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert str(site_paths.site_policy_path()) == "/tmp/elsewhere.yaml"


def test_user_config_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert site_paths.user_config_path() == tmp_path / "slurmdag" / "config.yaml"
