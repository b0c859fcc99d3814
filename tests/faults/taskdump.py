"""Debugging aid: run a module like ``python -m`` with a SIGUSR1 handler that prints the stack of
every asyncio task (and every thread) to stderr.

    python tests/faults/taskdump.py projector run       # same as python -m projector run

``ProcGroup`` starts the projector and the API through it when ``FAULTS_TASKDUMP=1`` is set, and
``Stack.diagnose()`` then signals a hung projector before reading its log.
"""

from __future__ import annotations

import asyncio
import faulthandler
import runpy
import signal
import sys
from types import FrameType


def _dump(signum: int, frame: FrameType | None) -> None:
    out = sys.stderr
    out.write("\n==== SIGUSR1 task dump ====\n")
    loop = asyncio._get_running_loop()
    if loop is not None:
        for task in asyncio.all_tasks(loop):
            out.write(f"--- {task!r}\n")
            task.print_stack(limit=30, file=out)
    faulthandler.dump_traceback(file=out, all_threads=True)
    out.write("==== end of task dump ====\n")
    out.flush()


def main() -> None:
    here = str(__import__("pathlib").Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p != here]  # our helpers must not shadow anything
    if len(sys.argv) < 2:
        sys.exit("usage: taskdump.py MODULE [ARGS...]")
    signal.signal(signal.SIGUSR1, _dump)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
