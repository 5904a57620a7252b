"""``severe run TASK ...``: the same entry points as the subprojects' scripts, from anywhere. The table of
commands is built from the task registry (severe.tasks)."""

from __future__ import annotations

import importlib
import sys

from severe.errors import SevereError


def main(argv: list[str]) -> int:
    from severe.tasks import entry_points

    commands = entry_points()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: severe run TASK [ARGS ...]\n\ntasks:")
        for name, ep in commands.items():
            print(f"  {name:<16} {ep.help}")
        print("\nRun 'severe run TASK --help' for the options of one task.")
        return 0 if argv else 2
    if argv[0] not in commands:
        raise SevereError(f"unknown task '{argv[0]}'; known: {', '.join(commands)}")
    ep = commands[argv[0]]
    return getattr(importlib.import_module(ep.module), ep.function)(argv[1:], prog=f"severe run {argv[0]}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
