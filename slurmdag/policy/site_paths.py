"""Where this installation reads its site policy. An admin changes SITE_POLICY_PATH at install time (or packages a
different value); it is deliberately NOT read from an environment variable a user could set, so a user cannot
switch the site's limits off. `site_policy_path` honours SLURMDAG_SITE_POLICY only for root (who can edit the site
file anyway): that lets the test suite and admins try a policy without touching the real one.
"""

from __future__ import annotations

import os
from pathlib import Path

SITE_POLICY_PATH = "/etc/slurmdag/policy.yaml"
ROOT_OVERRIDE_ENV = "SLURMDAG_SITE_POLICY"  # honoured only when the real and effective uid are 0


def site_policy_path() -> Path:
    override = os.environ.get(ROOT_OVERRIDE_ENV)
    if override and os.getuid() == 0 and os.geteuid() == 0:
        return Path(override)
    return Path(SITE_POLICY_PATH)


def user_config_path() -> Path:
    """The user's own config (may only tighten the site's limits): $XDG_CONFIG_HOME/slurmdag/config.yaml."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slurmdag" / "config.yaml"
