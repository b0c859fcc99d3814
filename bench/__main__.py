"""``python -m bench [name ...]``: run every benchmark (or the named ones) in turn."""

from __future__ import annotations

import importlib
import sys
import time

from ledger import event_loop

ALL = ["ledger", "projector", "client", "api", "console", "safe", "etcd", "cli"]


def main(argv: list[str]) -> int:
    names = argv or ALL
    failed = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"== {name}: not available ({exc})")
            continue
        print(f"== {name}")
        t = time.perf_counter()
        try:
            event_loop.run(module.main())
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            print(f"   FAILED: {type(exc).__name__}: {exc}")
            failed.append(name)
        print(f"   ({time.perf_counter() - t:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
