"""The pyslurm probe: a tiny program `choice.probe` runs in a child process (by path, so it imports nothing of
slurmdag), because `import pyslurm` can kill the interpreter that runs it. It prints one JSON line: pyslurm's version,
the Slurm it was built against, and what the controller says (its version, and the resource-limit propagation sbatch
reads), all in one RPC. Works with pyslurm 22.5 (only its old config API has the version) and later releases.
"""

import json


def controller_config(pyslurm) -> dict:
    """slurmctld's configuration by `scontrol show config`'s names, in one RPC (REQUEST_BUILD_INFO)."""
    if hasattr(pyslurm, "config"):  # pyslurm 22.5 and 24.11: the old API; key_pairs() reads what its constructor loaded
        pairs = pyslurm.config().key_pairs()
        text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
        return {text(k): text(v) for k, v in pairs.items() if v is not None}
    # pyslurm 25.11 has only the new API: its Config under `scontrol show config`'s names, for what slurmdag reads
    config = pyslurm.slurmctld.Config.load()
    out = {"SLURM_VERSION": config.version}
    for name, attribute in NEW_API_NAMES.items():
        value = getattr(config, attribute, None)
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if value is not None:
            out[name] = value
    return out


# `scontrol show config` names -> pyslurm.slurmctld.Config attributes (pre-flight and the job environment read these)
NEW_API_NAMES = {
    "MaxArraySize": "max_array_size",
    "MaxJobCount": "max_job_count",
    "MinJobAge": "min_job_age",
    "PropagateResourceLimits": "propagate_resource_limits",
    "PropagateResourceLimitsExcept": "propagate_resource_limits_except",
}


def main() -> None:
    try:
        import pyslurm
    except ImportError as ex:
        print(json.dumps({"missing": str(ex)}))
        return
    out = {"pyslurm": pyslurm.__version__, "path": pyslurm.__file__}
    try:
        out["built_for"] = ".".join(str(p) for p in pyslurm.slurm_api_version())
    except Exception:  # noqa: BLE001 - only informative
        pass
    try:
        config = controller_config(pyslurm)
        out["cluster"] = config.get("SLURM_VERSION")
        out["config"] = config
    except Exception as ex:  # noqa: BLE001 - reported to the parent, which decides
        out["cluster_error"] = f"{type(ex).__name__}: {ex}"
        # libslurm's error number, when there is one: the parent tells "slurmctld is not answering" from the rest.
        # pyslurm's RPCError has .errno; the old API (22.5, 24.11) raises ValueError(message, errno).
        errno = getattr(ex, "errno", None)
        if errno is None and len(ex.args) == 2 and isinstance(ex.args[1], int):
            errno = ex.args[1]
        if isinstance(errno, int):
            out["cluster_errno"] = errno
            out["cluster_message"] = str(getattr(ex, "msg", None) or ex.args[0])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
