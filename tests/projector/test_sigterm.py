"""``python -m projector run`` exits 0 on SIGTERM at any point of its life, including while it is
still importing (it used to die with -15 there: the handler came with the event loop).

The signal is delivered at an exact point by the child itself: a meta-path hook sends SIGTERM to
its own process the moment the projector first imports the named module, then the projector runs
as ``python -m projector run`` would (``runpy``). No timing is involved.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from projector import ProjectorSettings
from ops.embedded import REPO_ROOT

from .helpers import env_for, wait_exit

_CHILD = """
import importlib.abc, os, runpy, signal, sys

TARGET = sys.argv[1]

class SigtermOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, SigtermOnImport())
sys.argv = ["projector", "run"]
runpy.run_module("projector", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "module",
    [
        "argparse",  # the first import after the handler: the earliest point the projector controls
        "asyncpg",  # loading the PostgreSQL edge
        "nats",  # loading the NATS edge
        "projector.runner",  # loading the projector itself
    ],
)
async def test_sigterm_while_importing_exits_0(projector_settings: ProjectorSettings, module: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, module],
        env=env_for(projector_settings),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        code = await wait_exit(proc, timeout=30)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert code == 0, stderr
