#!/usr/bin/env python3
"""Render a config template by ${VAR} substitution from the environment.

Usage: render.py TEMPLATE [OUTPUT]

Only ${NAME} (braces required) is replaced, so the templates also work with
`envsubst`. A referenced variable that is not set is an error (exit 1), so a
typo never renders an empty value silently. `$$` is not special.
"""
import os
import re
import sys

PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        text = fh.read()
    missing = sorted({m for m in PATTERN.findall(text) if m not in os.environ})
    if missing:
        sys.stderr.write(f"render.py: {argv[1]}: unset variable(s): {', '.join(missing)}\n")
        return 1
    out = PATTERN.sub(lambda m: os.environ[m.group(1)], text)
    if len(argv) == 3:
        with open(argv[2], "w", encoding="utf-8") as fh:
            fh.write(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
