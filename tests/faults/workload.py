"""Load generators that record every operation in a ``History``.

HTTP writers POST documents carrying a unique marker (``{"w": "<writer>-<n>"}``) with an
Idempotency-Key, and retry a write with the same key until it is acknowledged, definitely
refused, or a deadline passes (then it stays *unknown*). Classification of one attempt:

- 200/201/202 with a version → ok (200: the projection has it, reads must see it);
- 408, 5xx, a reset/closed connection, a client timeout → unknown;
- any other 4xx (409 conflict, 422, 413, ...) → fail.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ledger import Ledger, Replace, VersionConflict
from ledger.errors import LedgerError, Unavailable, UsageError

from .history import MARKER_KEY, History, Op

__all__ = ["HttpWriter", "HttpReader", "SseWatcher", "LedgerWriter", "Attempt", "Pacer"]


@dataclass
class Attempt:
    outcome: str  # ok | fail | unknown
    status: int | None = None
    version: int | None = None
    retry_after: float | None = None
    detail: str = ""


@dataclass
class WriterStats:
    logical: int = 0
    acked: int = 0
    failed: int = 0
    unknown: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)  # monotonic completion of each ack


class Pacer:
    """Sleeps to pace load (not to synchronise): ``await pacer.pause()``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def pause(self, at_least: float = 0.0) -> None:
        delay = max(self.interval * random.uniform(0.5, 1.5), at_least)
        if delay > 0:
            await asyncio.sleep(delay)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class HttpWriter:
    """One writer process (a logical client) of one service through the HTTP API."""

    def __init__(self, history: History, session: aiohttp.ClientSession,
                 base_url: str | Callable[[], str], service: str, name: str, *,
                 timeout: float = 8.0, give_up_after: float = 30.0, idempotent: bool = True,
                 payload_bytes: int = 0, retry_pause: float = 0.1, max_retry_pause: float = 1.0) -> None:
        self.history = history
        self.session = session
        self._base = base_url
        self.service = service
        self.name = name
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.idempotent = idempotent
        self.payload = "x" * payload_bytes
        self.retry_pause = retry_pause
        self.max_retry_pause = max_retry_pause  # Retry-After is honoured up to this
        self.n = 0
        self.stats = WriterStats()
        self.run_id = uuid.uuid4().hex[:6]

    @property
    def base_url(self) -> str:
        return self._base() if callable(self._base) else self._base

    def document(self, marker: str) -> dict[str, Any]:
        doc: dict[str, Any] = {MARKER_KEY: marker, "writer": self.name}
        if self.payload:
            doc["payload"] = self.payload
        return doc

    async def attempt(self, marker: str, key: str | None, if_match: int | None = None) -> Attempt:
        op = self.history.invoke_write(self.service, self.name, marker, key)
        headers = {"X-Change-Reason": f"fault test {marker}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        try:
            async with self.session.post(
                f"{self.base_url}/api/v1/config/{self.service}", json=self.document(marker),
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                status = resp.status
                try:
                    body = await resp.json(content_type=None)
                except (ValueError, aiohttp.ClientPayloadError):
                    body = None
                retry_after = _retry_after(resp)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
            self.history.unknown(op, f"{type(exc).__name__}: {exc}"[:200])
            return Attempt("unknown", detail=type(exc).__name__)
        self.stats.statuses[str(status)] = self.stats.statuses.get(str(status), 0) + 1
        if status in (200, 201, 202) and isinstance(body, dict) and isinstance(body.get("version"), int):
            dup = " duplicate" if body.get("duplicate") else ""
            seq = body.get("seq") if isinstance(body.get("seq"), int) else None
            self.history.ok(op, body["version"], visible=status != 202, seq=seq, detail=f"{status}{dup}")
            return Attempt("ok", status, body["version"])
        if 400 <= status < 500 and status != 408:
            self.history.fail(op, f"{status} {str(body)[:200]}")
            return Attempt("fail", status, detail=str(body)[:200], retry_after=retry_after)
        self.history.unknown(op, f"{status} {str(body)[:200]}")
        return Attempt("unknown", status, detail=str(body)[:200], retry_after=retry_after)

    async def write_one(self, *, stop_retrying: asyncio.Event | None = None,
                        if_match: int | None = None) -> Attempt:
        """One logical write, retried with the same Idempotency-Key while the outcome is unknown.

        ``if_match``: send ``If-Match: "<version>"`` (every retry sends the same).
        """
        self.n += 1
        marker = f"{self.name}-{self.run_id}-{self.n}"
        key = f"k-{marker}" if self.idempotent else None
        self.stats.logical += 1
        deadline = time.monotonic() + self.give_up_after
        while True:
            result = await self.attempt(marker, key, if_match)
            if result.outcome == "ok":
                self.stats.acked += 1
                self.stats.ack_times.append(time.monotonic())
                return result
            if result.outcome == "fail":
                self.stats.failed += 1
                return result
            if not self.idempotent or time.monotonic() > deadline or (
                stop_retrying is not None and stop_retrying.is_set()
            ):
                self.stats.unknown += 1
                return result
            pause = min(result.retry_after or self.retry_pause, self.max_retry_pause)
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))  # pacing retries, not syncing

    async def run(self, stop: asyncio.Event, pacer: Pacer, *, max_writes: int | None = None) -> None:
        """Write until ``stop`` is set; a write in progress is finished (retried) first."""
        while not stop.is_set() and (max_writes is None or self.n < max_writes):
            await self.write_one()
            await pacer.pause()


class HttpReader:
    """Reads the current config through the API and records each read."""

    def __init__(self, history: History, session: aiohttp.ClientSession,
                 base_url: str | Callable[[], str], service: str, name: str, *, timeout: float = 5.0) -> None:
        self.history = history
        self.session = session
        self._base = base_url
        self.service = service
        self.name = name
        self.timeout = timeout
        self.ok = 0
        self.failed = 0

    @property
    def base_url(self) -> str:
        return self._base() if callable(self._base) else self._base

    async def read(self) -> Op:
        op = self.history.invoke_read(self.service, self.name)
        try:
            async with self.session.get(
                f"{self.base_url}/api/v1/config/{self.service}",
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                status = resp.status
                served_from = resp.headers.get("X-Served-From", "cache")
                body = await resp.json(content_type=None) if status in (200, 404) else None
        except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError, ValueError) as exc:
            self.failed += 1
            return self.history.read_fail(op, type(exc).__name__)
        op.detail = served_from
        if status == 200 and isinstance(body, dict) and isinstance(body.get("version"), int):
            self.ok += 1
            return self.history.read_ok(op, body["version"], body.get("config"))
        if status == 404:
            self.ok += 1
            return self.history.read_ok(op, 0, None)
        self.failed += 1
        return self.history.read_fail(op, str(status))

    async def run(self, stop: asyncio.Event, pacer: Pacer) -> None:
        while not stop.is_set():
            await self.read()
            await pacer.pause()


class SseWatcher:
    """Watches ``/api/v1/config/{service}/watch`` and resumes with ``Last-Event-ID`` after every
    disconnect (API killed, PostgreSQL gone). Every event is recorded as an observation."""

    def __init__(self, history: History, session: aiohttp.ClientSession,
                 base_url: str | Callable[[], str], service: str, name: str) -> None:
        self.history = history
        self.session = session
        self._base = base_url
        self.service = service
        self.name = name
        self.last_id: int | None = None
        self.connects = 0
        self.events = 0

    @property
    def base_url(self) -> str:
        return self._base() if callable(self._base) else self._base

    async def _once(self) -> None:
        headers = {"Last-Event-ID": str(self.last_id)} if self.last_id is not None else {}
        async with self.session.get(
            f"{self.base_url}/api/v1/config/{self.service}/watch", headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=None),
        ) as resp:
            if resp.status != 200:
                return
            self.connects += 1
            event_id: int | None = None
            data: list[bytes] = []
            async for raw in resp.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"id:"):
                    event_id = int(line[3:].strip())
                elif line.startswith(b"data:"):
                    data.append(line[5:].strip())
                elif not line and event_id is not None:
                    try:
                        body = json.loads(b"".join(data))
                    except ValueError:
                        body = {}
                    self.history.observe(self.service, self.name, event_id, time.monotonic(),
                                         body.get("config") if isinstance(body, dict) else None)
                    self.last_id = event_id
                    self.events += 1
                    event_id, data = None, []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._once()
            except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError, ValueError):
                pass
            if not stop.is_set():
                await asyncio.sleep(0.2)  # reconnect pacing


class LedgerWriter:
    """A writer that appends through ``ledger.Ledger`` directly (no API)."""

    def __init__(self, history: History, ledger: Ledger, service: str, name: str, *,
                 give_up_after: float = 30.0, retry_pause: float = 0.1) -> None:
        self.history = history
        self.ledger = ledger
        self.service = service
        self.name = name
        self.give_up_after = give_up_after
        self.retry_pause = retry_pause
        self.n = 0
        self.stats = WriterStats()
        self.run_id = uuid.uuid4().hex[:6]

    async def write_one(self, timeout: float = 8.0) -> str:
        self.n += 1
        marker = f"{self.name}-{self.run_id}-{self.n}"
        key = f"k-{marker}"
        self.stats.logical += 1
        deadline = time.monotonic() + self.give_up_after
        while True:
            op = self.history.invoke_write(self.service, self.name, marker, key)
            try:
                done = await asyncio.wait_for(self.ledger.append(
                    self.service, Replace({MARKER_KEY: marker, "writer": self.name}),
                    actor=self.name, reason="fault test", idempotency_key=key), timeout)
            except VersionConflict as exc:
                self.history.fail(op, str(exc))
                self.stats.failed += 1
                return "fail"
            except UsageError as exc:
                self.history.fail(op, str(exc))
                self.stats.failed += 1
                return "fail"
            except (Unavailable, TimeoutError, LedgerError) as exc:
                self.history.unknown(op, f"{type(exc).__name__}: {exc}"[:200])
                if time.monotonic() > deadline:
                    self.stats.unknown += 1
                    return "unknown"
                await asyncio.sleep(self.retry_pause * random.uniform(0.5, 1.0))
                continue
            self.history.ok(op, done.version, seq=done.seq)
            self.stats.acked += 1
            self.stats.ack_times.append(time.monotonic())
            return "ok"

    async def run(self, stop: asyncio.Event, pacer: Pacer) -> None:
        while not stop.is_set():
            await self.write_one()
            await pacer.pause()
