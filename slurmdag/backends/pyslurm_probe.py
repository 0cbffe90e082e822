"""The pyslurm probe: a tiny program `choice.probe` runs in a child process (by path, so it imports nothing of
slurmdag), because `import pyslurm` can kill the interpreter that runs it. It prints one JSON line: pyslurm's version,
the Slurm it was built against, and what the controller says (its version, and the resource-limit propagation sbatch
reads). Works with pyslurm 22.5 (only the old config API has the version) and later releases.
"""

import json


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
        if hasattr(pyslurm, "config"):
            config = pyslurm.config().get()
            out["cluster"] = config.get("version")
            out["config"] = {
                k: config.get(k) for k in ("propagate_rlimits", "propagate_rlimits_except", "max_array_sz")
            }
        else:
            out["cluster"] = pyslurm.slurmctld.Config.load().version
    except Exception as ex:  # noqa: BLE001 - reported to the parent, which decides
        out["cluster_error"] = f"{type(ex).__name__}: {ex}"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
