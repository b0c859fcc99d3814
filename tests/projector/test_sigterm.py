"""``python -m projector run`` exits 0 on SIGTERM at any point of its life, including while it is
still importing (it used to die with -15 there: the handler came with the event loop).

The signal is delivered at an exact point by the child itself: a meta-path hook sends SIGTERM to
its own process the moment the projector first imports the named module, then the projector runs
as ``python -m projector run`` would (``runpy``). No timing is involved.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from ops.embedded import REPO_ROOT
from projector import ProjectorSettings

from .helpers import env_for

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
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, module,
        env=env_for(projector_settings),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode(errors="replace")
