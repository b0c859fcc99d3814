"""Supervise the stack's child processes (``python -m projector run``, ``python -m api``).

Each child runs in its own session (so a terminal's Ctrl-C reaches only ``config-ledger up``,
which then stops things in order) and asks the kernel to SIGTERM it if ``up`` dies
(``PR_SET_PDEATHSIG``), so even a SIGKILLed ``up`` leaves no Python child behind. Output is
copied line by line to ``<data>/logs/<name>.log`` and, prefixed with the child's name, to the
console.

Policy: before the stack is ready, any exit aborts the start (``up`` reports it with the tail
of the log). Afterwards a crashed child is restarted with exponential backoff (0.5 s doubling
to 30 s, reset after a minute of good health), except for exit codes the spec marks as final —
the projector's fail-stop, a usage error — which are reported loudly and left stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from .cli_procs import die_with_parent

__all__ = ["ChildSpec", "Child", "Supervisor", "ChildExited"]

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    style: str = "cyan"
    # Exit codes after which restarting cannot help, with what to tell the operator.
    final_exits: Mapping[int, str] = field(default_factory=dict)


class ChildExited(Exception):
    """A child exited while the stack was starting (``up`` aborts)."""

    def __init__(self, name: str, returncode: int, tail: str) -> None:
        super().__init__(f"{name} exited with code {returncode} during startup")
        self.name = name
        self.returncode = returncode
        self.tail = tail


class Child:
    """One supervised process and the pump copying its output."""

    def __init__(self, spec: ChildSpec, console: Console) -> None:
        self.spec = spec
        self.console = console
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.restarts = 0
        self._pump: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None
        self._tail: list[str] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self._open_log()
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            env=dict(self.spec.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.started_at = time.monotonic()
        self._pump = asyncio.create_task(self._copy_output(self.proc), name=f"pump-{self.spec.name}")

    def _open_log(self) -> None:
        if self._log is None:
            self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.spec.log_path, "ab")  # noqa: SIM115 - closed in close()

    async def _copy_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and self._log is not None
        prefix = f"[{self.spec.style}]{self.spec.name:>9} │[/] "
        async for raw in proc.stdout:
            self._log.write(raw)
            self._log.flush()
            line = raw.decode("utf-8", errors="replace").rstrip()
            self._tail = [*self._tail[-19:], line]
            self.console.print(prefix + escape(line), soft_wrap=True, highlight=False)

    def tail(self) -> str:
        return "\n".join(self._tail)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._pump is not None:
            await asyncio.wait({self._pump}, timeout=2)  # the rest of its output (never cancels it)
        return code

    def send(self, sig: signal.Signals) -> None:
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig``; SIGKILL the process group if it has not exited after ``timeout``."""
        if self.proc is None:
            return None
        if self.running():
            self.send(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.console.print(f"[yellow]{self.spec.name} did not stop in {timeout:.0f}s: killing it[/]")
                self.send(signal.SIGKILL)
        code = await self.wait()
        self.close()
        return code

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Supervisor:
    """Start children, restart them on crashes, stop them in a given order."""

    def __init__(self, specs: Sequence[ChildSpec], console: Console,
                 *, on_start: Callable[[Child], None] | None = None) -> None:
        self.console = console
        self.children = [Child(spec, console) for spec in specs]
        self.on_start = on_start
        self.ready = False
        self.stopping = False
        self._stopped = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self.startup_failure: asyncio.Future[ChildExited] = asyncio.get_running_loop().create_future()

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.spec.name == name)

    async def start(self) -> None:
        for child in self.children:
            await child.start()
            if self.on_start:
                self.on_start(child)
            self._watchers.append(asyncio.create_task(self._watch(child), name=f"watch-{child.spec.name}"))

    async def _sleep_unless_stopping(self, seconds: float) -> bool:
        """Sleep; True if the supervisor started stopping meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)
        return self.stopping

    async def _watch(self, child: Child) -> None:
        backoff = BACKOFF_FIRST
        while True:
            code = await child.wait()
            if self.stopping:
                return
            name = child.spec.name
            if not self.ready:
                if not self.startup_failure.done():
                    self.startup_failure.set_result(ChildExited(name, code, child.tail()))
                return
            final = child.spec.final_exits.get(code)
            if final is not None:
                self.console.print(Panel(
                    f"[bold]{escape(name)} exited with code {code} and will not be restarted.[/]\n"
                    f"{escape(final)}\nLog: {child.spec.log_path}",
                    title=f"{name} stopped", border_style="bold red",
                ), soft_wrap=False)
                return
            if time.monotonic() - child.started_at > HEALTHY_AFTER:
                backoff = BACKOFF_FIRST
            self.console.print(f"[bold yellow]{name} exited with code {code}; restarting in {backoff:.1f}s[/]")
            if await self._sleep_unless_stopping(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            await child.start()
            child.restarts += 1
            if self.on_start:
                self.on_start(child)

    async def stop(self, order: Sequence[str], sig: signal.Signals = signal.SIGTERM,
                   timeout: float = 10.0) -> None:
        """Stop the children one after the other, in ``order`` (then any others)."""
        self.stopping = True
        self._stopped.set()
        for task in self._watchers:  # first, so that no restart races the stop
            task.cancel()
        for task in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        names = list(order) + [c.spec.name for c in self.children if c.spec.name not in order]
        for name in names:
            await self.child(name).stop(sig, timeout)

    def kill_all(self) -> None:
        """A second Ctrl-C: no more waiting."""
        for child in self.children:
            child.send(signal.SIGKILL)
