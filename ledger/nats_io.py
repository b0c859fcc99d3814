"""The NATS edge: connecting, translating nats-py errors, direct gets and ordered replays.

Everything that touches nats-py for *reading* lives here, so the writer, the projector, the API
and the client share one tested path. No nats-py exception escapes: ``nats_errors()`` maps them
to ``Unavailable`` / ``StoreTimeout`` / ``LedgerError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js import api as js_api

from . import instants
from .errors import LedgerError, NotFound, StoreTimeout, Unavailable
from .settings import LedgerSettings

__all__ = [
    "StoredMsg",
    "connect",
    "nats_errors",
    "parse_nats_time",
    "format_up_to",
    "direct_last",
    "direct_next",
    "direct_multi_last",
    "direct_first_at_or_after",
    "direct_at",
    "stream_last_seq",
    "replay",
]

log = logging.getLogger("ledger.nats")

# Header names as the server spells them (case-sensitive on the server, see NATS_NOTES.md).
MSG_ID = js_api.Header.MSG_ID.value
EXPECTED_LAST_SUBJECT_SEQ = js_api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value


@dataclass(frozen=True)
class StoredMsg:
    """A message as the stream holds it."""

    subject: str
    seq: int
    data: bytes
    stored_at: datetime
    headers: dict[str, str]

    @property
    def msg_id(self) -> str | None:
        return self.headers.get(MSG_ID)


def parse_nats_time(text: str) -> datetime:
    """Parse ``2026-11-28T13:10:26.759294709Z`` (nanoseconds) to a UTC datetime (µs)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1]
    if "." in text:
        base, frac = text.split(".", 1)
        frac = (frac + "000000")[:6]
        text = f"{base}.{frac}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def format_up_to(instant: datetime) -> str:
    """``up_to_time`` covering every message stored within the microsecond of ``instant``
    (clamped to what NATS can represent, see ``ledger.instants``)."""
    if instant.tzinfo is None:
        raise LedgerError("naive datetime: pass a timezone-aware instant")
    return instants.format_nats(instant, up_to=True)


@contextlib.contextmanager
def nats_errors(what: str) -> Iterator[None]:
    """Translate nats-py exceptions raised inside the block."""
    try:
        yield
    except LedgerError:
        raise
    except (TimeoutError, nats.errors.TimeoutError):
        raise StoreTimeout(f"NATS did not answer in time ({what})") from None
    except nats.js.errors.NotFoundError:
        raise NotFound(f"not found ({what})") from None
    except nats.js.errors.ServiceUnavailableError:
        raise Unavailable(f"JetStream is unavailable ({what})") from None
    except nats.js.errors.APIError as exc:
        if exc.err_code == 10059:
            raise Unavailable(
                f"stream does not exist ({what}); run `python -m ledger streams apply`"
            ) from None
        if exc.err_code in (10047, 10023) or (exc.code == 503):
            raise Unavailable(f"JetStream cannot store more ({what}): {exc.description}") from None
        raise LedgerError(f"JetStream refused {what}: {exc.description} (code {exc.err_code})") from None
    except (
        nats.errors.NoRespondersError,
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionDrainingError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.NoServersError,
        nats.errors.OutboundBufferLimitError,
        nats.errors.StaleConnectionError,
        nats.errors.UnexpectedEOF,
        ConnectionError,
        OSError,
    ) as exc:
        raise Unavailable(f"NATS is unavailable ({what}): {type(exc).__name__}") from None
    except nats.errors.Error as exc:
        raise Unavailable(f"NATS error ({what}): {exc}") from None


async def _quiet_error_cb(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def connect(
    url: str,
    *,
    name: str = "config-ledger",
    connect_timeout: float = 2.0,
    on_disconnect: Callable[[], Any] | None = None,
    on_reconnect: Callable[[], Any] | None = None,
) -> NATS:
    """Connect, then reconnect forever; a server unreachable at start raises Unavailable.

    nats-py retries the *first* connect as often as later reconnects (forever here), so the
    first connect is bounded by a deadline of its own.
    """
    nc = NATS()

    async def disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):
            log.warning("disconnected from NATS %s", url)
            if on_disconnect:
                on_disconnect()

    async def reconnected() -> None:
        log.info("reconnected to NATS %s", url)
        if on_reconnect:
            on_reconnect()

    servers = [u.strip() for u in url.split(",") if u.strip()]
    try:
        await asyncio.wait_for(
            nc.connect(
                servers=servers,
                name=name,
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,  # type: ignore[arg-type]
                ping_interval=5,
                max_outstanding_pings=2,
                error_cb=_quiet_error_cb,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
            ),
            timeout=connect_timeout + 1,
        )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        raise Unavailable(f"cannot connect to NATS at {url}: {type(exc).__name__}") from None
    return nc


def _to_stored(msg: Any) -> StoredMsg | None:
    headers = dict(msg.headers or {})
    status = headers.get("Status")
    if status:
        if status in ("404", "408", "204"):
            return None
        raise LedgerError(f"direct get failed: {status} {headers.get('Description', '')}")
    return StoredMsg(
        subject=headers["Nats-Subject"],
        seq=int(headers["Nats-Sequence"]),
        data=msg.data,
        stored_at=parse_nats_time(headers["Nats-Time-Stamp"]),
        headers={k: v for k, v in headers.items() if isinstance(k, str)},
    )


async def _direct(nc: NATS, stream: str, request: dict[str, Any], timeout: float) -> StoredMsg | None:
    with nats_errors("direct get"):
        msg = await nc.request(f"$JS.API.DIRECT.GET.{stream}", orjson.dumps(request), timeout=timeout)
    return _to_stored(msg)


async def direct_last(nc: NATS, stream: str, subject: str, *, timeout: float = 5.0) -> StoredMsg | None:
    """The last message on ``subject``, or None."""
    return await _direct(nc, stream, {"last_by_subj": subject}, timeout)


async def direct_next(
    nc: NATS, stream: str, subject: str, seq: int, *, timeout: float = 5.0
) -> StoredMsg | None:
    """The first message on ``subject`` at or after stream sequence ``seq``, or None."""
    return await _direct(nc, stream, {"seq": max(seq, 1), "next_by_subj": subject}, timeout)


async def direct_first_at_or_after(
    nc: NATS, stream: str, instant: datetime, subject: str | None = None, *, timeout: float = 5.0
) -> StoredMsg | None:
    """The first message stored at or after ``instant`` (optionally on one subject)."""
    if instants.clamp_for_stream(instant)[1] > 0:
        return None  # after 2262: nothing was stored that late
    req: dict[str, Any] = {"start_time": instants.format_nats(instant)}
    if subject:
        req["next_by_subj"] = subject
    return await _direct(nc, stream, req, timeout)


async def direct_multi_last(
    nc: NATS,
    stream: str,
    subjects: list[str],
    *,
    up_to: datetime | None = None,
    batch: int = 10_000,
    timeout: float = 5.0,
) -> list[StoredMsg]:
    """The last message of every subject matching ``subjects`` as of ``up_to``: one request."""
    results: list[StoredMsg] = []
    request: dict[str, Any] = {"multi_last": subjects, "batch": batch}
    if up_to is not None:
        request["up_to_time"] = format_up_to(up_to)
    with nats_errors("multi-last direct get"):
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        try:
            await nc.publish(f"$JS.API.DIRECT.GET.{stream}", orjson.dumps(request), reply=inbox)
            while True:
                msg = await sub.next_msg(timeout=timeout)
                headers = msg.headers or {}
                status = headers.get("Status")
                if status:
                    if status in ("204", "404"):
                        break
                    raise LedgerError(f"multi-last get failed: {status} {headers.get('Description', '')}")
                stored = _to_stored(msg)
                if stored:
                    results.append(stored)
        finally:
            await sub.unsubscribe()
    if len(results) >= batch:
        # Never return a silently truncated fleet: the caller asks with a larger batch.
        raise LedgerError(f"more than {batch} subjects match {subjects}; raise the batch size")
    return results


async def direct_at(
    nc: NATS, stream: str, subject: str, instant: datetime, *, timeout: float = 5.0
) -> StoredMsg | None:
    """The last message on ``subject`` stored at or before ``instant`` (one direct get), or None."""
    if instants.clamp_for_stream(instant)[1] < 0:
        return None  # before 1677: nothing was stored that early (NATS would wrap around)
    msgs = await direct_multi_last(nc, stream, [subject], up_to=instant, batch=2, timeout=timeout)
    return msgs[0] if msgs else None


async def stream_last_seq(nc: NATS, stream: str) -> int:
    with nats_errors("stream info"):
        info = await nc.jetstream().stream_info(stream)
    return int(info.state.last_seq)


async def replay(
    nc: NATS,
    stream: str,
    subject: str,
    *,
    start_seq: int | None = None,
    stop_seq: int | None = None,
    timeout: float = 5.0,
) -> AsyncIterator[StoredMsg]:
    """Stored messages on ``subject`` (wildcards allowed) in order, from ``start_seq`` (default 1)
    up to ``stop_seq`` (default: the stream's last sequence when the replay starts).

    A replay, not a watch: it ends. Built on ``ledger.watch.StreamWatcher``.
    """
    from .watch import StreamWatcher  # watch builds on this module

    if stop_seq is None:
        stop_seq = await stream_last_seq(nc, stream)
    first = max(start_seq or 1, 1)
    if stop_seq == 0 or first > stop_seq:
        return
    settings = LedgerSettings(stream=stream, request_timeout=timeout)
    watcher = StreamWatcher(nc, settings, subject, after_seq=first - 1)
    async with contextlib.aclosing(watcher.__aiter__()) as items:
        async for msg in items:
            if msg is None or msg.seq > stop_seq:
                return  # caught up: everything up to stop_seq was delivered
            yield msg
            if msg.seq >= stop_seq:
                return
