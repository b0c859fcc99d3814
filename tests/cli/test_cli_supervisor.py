"""Supervision of the stack's children (ops/cli_supervisor.py), with small Python children."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from rich.console import Console

from ops.cli_supervisor import ChildExited, ChildSpec, Supervisor
from ops.embedded import REPO_ROOT
from tests.support.waiting import wait_for

from .proctree import stat_of


def spec(name: str, code: str, tmp_path: Path, **kwargs: object) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code)],
                     {**os.environ, "PYTHONUNBUFFERED": "1"}, tmp_path / f"{name}.log", **kwargs)  # type: ignore[arg-type]


def console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, no_color=True), buf


async def test_a_crashing_child_is_restarted_with_backoff_and_its_output_logged(tmp_path: Path) -> None:
    con, buf = console()
    sup = Supervisor([spec("crasher", "print('starting'); raise SystemExit(1)", tmp_path)], con)
    await sup.start()
    sup.ready = True
    child = sup.child("crasher")
    log = tmp_path / "crasher.log"
    await wait_for(lambda: log.read_text().count("starting") >= 3, timeout=20, what="two restarts")
    await sup.stop(["crasher"])
    assert child.restarts >= 2
    assert "crasher exited with code 1; restarting in 0.5s" in buf.getvalue()
    assert "restarting in 1.0s" in buf.getvalue()  # the backoff doubled
    assert not child.running()


async def test_a_final_exit_code_is_reported_and_not_restarted(tmp_path: Path) -> None:
    con, buf = console()
    sup = Supervisor([spec("projector", "raise SystemExit(4)", tmp_path,
                           final_exits={4: "FAIL-STOP: the stream and the projection disagree."})], con)
    await sup.start()
    sup.ready = True
    await wait_for(lambda: "will not be restarted" in buf.getvalue(), timeout=10, what="the fail-stop report")
    assert sup.child("projector").restarts == 0
    assert "FAIL-STOP" in buf.getvalue()
    await sup.stop(["projector"])


async def test_an_exit_before_ready_fails_the_start_with_the_tail_of_the_output(tmp_path: Path) -> None:
    con, _ = console()
    sup = Supervisor([spec("api", "print('API_PORT: bad value'); raise SystemExit(2)", tmp_path)], con)
    await sup.start()
    failure = await asyncio.wait_for(sup.startup_failure, 10)
    assert isinstance(failure, ChildExited)
    assert (failure.name, failure.returncode) == ("api", 2)
    assert "API_PORT: bad value" in failure.tail
    await sup.stop(["api"])


async def test_stop_goes_in_order_and_forwards_the_signal(tmp_path: Path) -> None:
    record = tmp_path / "stops.txt"
    code = f"""
        import signal, sys, time
        def bye(signum, frame):
            with open({str(record)!r}, "a") as f:
                f.write(f"{{sys.argv[1]}} {{signal.Signals(signum).name}}\\n")
            sys.exit(0)
        signal.signal(signal.SIGINT, bye)
        signal.signal(signal.SIGTERM, bye)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """
    con, buf = console()
    specs = [ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code), name], dict(os.environ),
                       tmp_path / f"{name}.log") for name in ("projector", "api")]
    sup = Supervisor(specs, con)
    await sup.start()
    await wait_for(lambda: buf.getvalue().count("ready") == 2, timeout=10, what="both children up")
    await sup.stop(["api", "projector"], signal.SIGINT)
    assert record.read_text().splitlines() == ["api SIGINT", "projector SIGINT"]


async def test_a_child_that_ignores_the_signal_is_killed_after_the_timeout(tmp_path: Path) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """
    con, buf = console()
    sup = Supervisor([spec("stubborn", code, tmp_path)], con)
    await sup.start()
    await wait_for(lambda: "ready" in buf.getvalue(), timeout=10, what="child up")
    await sup.stop(["stubborn"], signal.SIGTERM, timeout=0.5)
    assert "did not stop" in buf.getvalue()
    assert not sup.child("stubborn").running()


async def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: even SIGKILL of `up` leaves no Python child behind."""
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from pathlib import Path
        from rich.console import Console
        from ops.cli_supervisor import ChildSpec, Supervisor

        async def main():
            spec = ChildSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
                             dict(os.environ), Path({str(tmp_path / "sleeper.log")!r}))
            sup = Supervisor([spec], Console(file=sys.stderr))
            await sup.start()
            print(sup.child("sleeper").pid, flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
    """)
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=subprocess.PIPE,
                                                  cwd=REPO_ROOT)
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(parent.stdout.readline(), 20)
        child_pid = int(line)
        assert stat_of(child_pid) is not None
    finally:
        parent.kill()
        await parent.wait()
    await wait_for(lambda: stat_of(child_pid) is None or stat_of(child_pid)[2] == "Z",  # type: ignore[index]
                   timeout=10, what="the orphaned child to die")
