"""The common shape of a scenario: load (writers, readers), faults, then the checks.

    load = Load(stack)
    await load.http_writers(["svc-a", "svc-b"], per_service=2, pace=0.02)
    await load.http_readers(["svc-a"])
    await load.start()
    ... inject faults, wait_acks(...) to see the system recover ...
    await load.stop()                        # writes in progress are retried to an outcome
    await load.verify(fault_report)          # history vs stream, PostgreSQL vs stream
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from tests.support.waiting import wait_for

from .history import MARKER_KEY, CheckResult, History, Op, StreamEvent, check_history
from .procs import Proc
from .stack import Stack
from .workload import HttpReader, HttpWriter, LedgerWriter, Pacer, SseWatcher

__all__ = [
    "Load", "CheckpointMonitor", "client_observations", "client_version_at", "convergence",
    "first_ack_op_after", "in_flight_at", "markers_to_versions", "retry_stats", "wait_client_version",
]


class Load:
    """Writers and readers recording into one ``History``, run as background tasks."""

    def __init__(self, stack: Stack, history: History | None = None, *,
                 base_url: str | Callable[[], str] | None = None) -> None:
        self.stack = stack
        self.history = history or History()
        self._base = base_url
        self.session: aiohttp.ClientSession | None = None
        self.writers: list[HttpWriter | LedgerWriter] = []
        self.readers: list[HttpReader] = []
        self.watchers: list[SseWatcher] = []
        self._write_pace: dict[int, Pacer] = {}
        self._read_pace = Pacer(0.05)
        self._tasks: list[asyncio.Task[None]] = []
        self._watch_tasks: list[asyncio.Task[None]] = []
        self._watch_stop = asyncio.Event()
        self.stop_event = asyncio.Event()
        self.sse_catch_up_s: float | None = None

    def base_url(self) -> str:
        if self._base is None:
            return self.stack.base_url
        return self._base() if callable(self._base) else self._base

    async def open(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def http_writers(self, services: Iterable[str], per_service: int, *, pace: float = 0.02,
                           timeout: float = 8.0, give_up_after: float = 30.0, payload_bytes: int = 0,
                           prefix: str = "w", max_retry_pause: float = 1.0) -> list[HttpWriter]:
        session = await self.open()
        made = []
        for service in services:
            for i in range(per_service):
                w = HttpWriter(self.history, session, self.base_url, service, f"{prefix}{len(self.writers)}-{i}",
                               timeout=timeout, give_up_after=give_up_after, payload_bytes=payload_bytes,
                               max_retry_pause=max_retry_pause)
                self.writers.append(w)
                self._write_pace[id(w)] = Pacer(pace)
                made.append(w)
        return made

    def ledger_writer(self, writer: LedgerWriter, pace: float = 0.02) -> None:
        self.writers.append(writer)
        self._write_pace[id(writer)] = Pacer(pace)

    async def http_readers(self, services: Iterable[str], *, pace: float = 0.05) -> None:
        session = await self.open()
        self._read_pace = Pacer(pace)
        for service in services:
            self.readers.append(HttpReader(self.history, session, self.base_url, service,
                                           f"r{len(self.readers)}"))

    async def sse_watchers(self, services: Iterable[str], per_service: int = 1) -> None:
        session = await self.open()
        for service in services:
            for _ in range(per_service):
                self.watchers.append(SseWatcher(self.history, session, self.base_url, service,
                                                f"sse{len(self.watchers)}"))

    async def start(self) -> None:
        for sse in self.watchers:
            self._watch_tasks.append(asyncio.create_task(sse.run(self._watch_stop)))
        for w in self.writers:
            self._tasks.append(asyncio.create_task(w.run(self.stop_event, self._write_pace[id(w)])))
        for r in self.readers:
            self._tasks.append(asyncio.create_task(r.run(self.stop_event, self._read_pace)))

    async def stop(self, timeout: float = 60.0) -> None:
        """Stop issuing new writes; writes in progress finish (retried until resolved or given up)."""
        self.stop_event.set()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)
                      and not isinstance(r, asyncio.CancelledError)]
            if errors:
                raise errors[0]
        self._tasks.clear()
        if self._watch_tasks:
            await self._stop_watchers()
        await self.close()

    async def abort(self) -> None:
        """Cancel everything at once (the scenario is being abandoned)."""
        self.stop_event.set()
        self._watch_stop.set()
        tasks = self._tasks + self._watch_tasks
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._watch_tasks.clear()
        await self.close()

    async def _stop_watchers(self, timeout: float = 30.0) -> None:
        """Let every SSE watcher reach its service's last version, then stop them."""
        stopped = time.monotonic()
        events = await self.stack.stream_events()
        final: dict[str, int] = {}
        for e in events:
            if e.version is not None:
                final[e.service] = max(final.get(e.service, 0), e.version)

        def caught_up() -> bool:
            return all((w.last_id or 0) >= final.get(w.service, 0) for w in self.watchers)

        try:
            await wait_for(caught_up, timeout=timeout, what="the SSE watchers to reach the last versions")
            self.sse_catch_up_s = round(time.monotonic() - stopped, 3)
        finally:
            self._watch_stop.set()
            for t in self._watch_tasks:
                t.cancel()
            await asyncio.gather(*self._watch_tasks, return_exceptions=True)
            self._watch_tasks.clear()

    def http_writer_names(self) -> list[str]:
        return [w.name for w in self.writers if isinstance(w, HttpWriter)]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.writers:
            if isinstance(w, HttpWriter):
                for k, v in w.stats.statuses.items():
                    out[k] = out.get(k, 0) + v
        return dict(sorted(out.items()))

    def acked(self) -> int:
        return sum(w.stats.acked for w in self.writers)

    async def wait_acks(self, n: int, *, after: float | None = None, timeout: float = 30.0,
                        what: str = "writes to be acknowledged", http_only: bool = False) -> float:
        """Wait until ``n`` acks completed after monotonic ``after``; return the first one's time.

        ``http_only``: count acks of the HTTP writers only (not of direct ledger writers).
        """
        since = after if after is not None else 0.0
        writers = [w for w in self.writers if isinstance(w, HttpWriter) or not http_only]

        def probe() -> float | None:
            times = sorted(t for w in writers for t in w.stats.ack_times if t > since)
            return times[0] if len(times) >= n else None

        await wait_for(lambda: probe() is not None, timeout=timeout, what=what)
        result = probe()
        assert result is not None
        return result

    async def verify(self, report: Any = None, *, projection: bool = True,
                     projection_timeout: float = 60.0, contiguous_observations: bool = False,
                     reads_see_every_ack: bool = False,
                     stream: list[StreamEvent] | None = None) -> CheckResult:
        """History vs stream (and PostgreSQL vs stream); fills ``report``; raises on a problem."""
        problems: list[str] = []
        self.history.dump(self.stack.work_dir / "history.jsonl")
        pending = self.history.pending()
        if pending:
            problems.append(f"{len(pending)} operations never completed (recorder bug)")
        if projection:
            problems += await self.stack.projection_problems(timeout=projection_timeout)
        events = stream if stream is not None else await self.stack.stream_events()
        result = check_history(self.history, events, contiguous_observations=contiguous_observations,
                               reads_see_every_ack=reads_see_every_ack)
        result.problems[:0] = problems
        if report is not None:
            report.counts(result)
            if self.watchers:
                report.set(sse_watchers=len(self.watchers),
                           sse_reconnects=sum(max(0, w.connects - 1) for w in self.watchers),
                           sse_events=sum(w.events for w in self.watchers),
                           sse_catch_up_after_last_write_s=self.sse_catch_up_s)
        result.assert_ok()
        return result


class CheckpointMonitor:
    """Polls the projector's checkpoint every ``interval`` s in the background: (time, seq)."""

    def __init__(self, stack: Stack, interval: float = 0.1) -> None:
        self.stack = stack
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                self.samples.append((time.monotonic(), await self.stack.checkpoint()))
            except Exception:  # noqa: BLE001 - PostgreSQL may be down: no sample
                pass
            await asyncio.sleep(self.interval)  # sampling pace

    def start(self) -> CheckpointMonitor:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def reached(self, seq: int, after: float = 0.0) -> float | None:
        """The first sample time (after ``after``) at which the checkpoint was >= ``seq``."""
        return next((t for t, cp in self.samples if t >= after and cp >= seq), None)


def retry_stats(history: History) -> tuple[int, int]:
    """Logical writes that had an unknown attempt and were acknowledged by a later retry; and how
    many of those the server recognised as an earlier landing ("duplicate": true in the answer)."""
    attempts: dict[str, list[Op]] = {}
    for op in history.ops:
        if op.kind == "write" and op.marker:
            attempts.setdefault(op.marker, []).append(op)
    retried = [a for a in attempts.values()
               if any(o.outcome == "unknown" for o in a) and a[-1].outcome == "ok"]
    return len(retried), sum(1 for a in retried if "duplicate" in a[-1].detail)


def in_flight_at(history: History, instants: Iterable[float]) -> int:
    """Write attempts in flight (invoked before, completed after) at any of ``instants``."""
    points = sorted(instants)
    return sum(1 for op in history.ops
               if op.kind == "write" and op.complete is not None
               and any(op.invoke < t < op.complete for t in points))


def first_ack_op_after(history: History, t: float, processes: Iterable[str] | None = None) -> Op | None:
    """The first write acknowledged after ``t`` (by one of ``processes``, if given)."""
    names = set(processes) if processes is not None else None
    ops = [op for op in history.ops
           if op.kind == "write" and op.outcome == "ok" and op.complete is not None and op.complete > t
           and (names is None or op.process in names)]
    return min(ops, key=lambda op: op.complete or 0.0) if ops else None


def markers_to_versions(events: Iterable[StreamEvent]) -> dict[tuple[str, str], int]:
    out = {}
    for e in events:
        if e.marker is not None and e.version is not None:
            out[(e.service, e.marker)] = e.version
    return out


def _line_version(line: dict[str, Any], service: str, versions: dict[tuple[str, str], int]) -> int | None:
    """The version a driver line shows: from the config's marker when it has one."""
    marker = line.get("marker")
    config = line.get("config")
    if marker is None and isinstance(config, dict):
        marker = config.get(MARKER_KEY)
    if isinstance(marker, str) and (service, marker) in versions:
        return versions[(service, marker)]
    v = line.get("version", line.get("version_now"))
    return v if isinstance(v, int) else None


def client_observations(history: History, proc: Proc, service: str,
                        events: Iterable[StreamEvent]) -> int:
    """Turn the driver's ``update``/``ready`` lines into history observations; return how many."""
    versions = markers_to_versions(events)
    n = 0
    for line in proc.snapshot():
        if line.get("event") not in ("update", "ready"):
            continue
        config = line.get("config")
        if not (isinstance(config, dict) and isinstance(config.get(MARKER_KEY), str)):
            continue  # defaults / "no config": not a stream state
        v = _line_version(line, service, versions)
        if v is None:
            v = -1  # a marker the stream does not have: the checker reports it
        history.observe(service, proc.name, v, float(line["t"]), config)
        n += 1
    return n


def client_version_at(proc: Proc, service: str, versions: dict[tuple[str, str], int]) -> int | None:
    """The latest version the driver has shown (update or tick)."""
    best = None
    for line in proc.snapshot():
        if line.get("event") in ("update", "tick", "ready"):
            v = _line_version(line, service, versions)
            if v is not None and (best is None or v > best):
                best = v
    return best


def convergence(proc: Proc, service: str, target: int, since: float,
                versions: dict[tuple[str, str], int]) -> float | None:
    """Seconds from ``since`` until the driver first showed version >= ``target`` (None: never)."""
    for line in proc.snapshot():
        if line.get("event") not in ("update", "tick", "ready"):
            continue
        v = _line_version(line, service, versions)
        if v is not None and v >= target:
            return max(0.0, float(line["t"]) - since)
    return None


async def wait_client_version(proc: Proc, service: str, stack: Stack, *, timeout: float,
                              what: str = "the client to converge") -> int:
    """Wait until the client driver shows the stream's latest version of ``service``."""
    events = await stack.stream_events()
    mine = [e for e in events if e.service == service and e.version is not None]
    target = mine[-1].version if mine else 0
    versions = markers_to_versions(events)

    def probe() -> bool:
        if not proc.running():
            raise AssertionError(f"client driver exited: {proc.log_tail()}")
        v = client_version_at(proc, service, versions)
        return v is not None and v >= (target or 0)

    await wait_for(probe, timeout=timeout, what=f"{what} (version {target})")
    return target or 0

