"""The NATS edge: connecting, translating nats-py errors (``translate``), direct gets.

Everything that touches nats-py for *reading* lives here (consumers: ``ledger.consumer``), so the
writer, the projector, the API and the client share one tested path. No nats-py exception
escapes: ``translate`` / ``nats_errors()`` map each to the ledger's hierarchy, naming every
JetStream code acted on (``JS``): wrong last sequence (10071, 10164) -> ``WrongLastSequence``;
a leader election, no responders, 10008/10163 -> ``TemporarilyUnavailable`` (retry);
storage limits -> ``Unavailable``; a timeout -> ``StoreTimeout`` (outcome unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.js import api as js_api

from . import instants
from .errors import (
    LedgerError,
    NotFound,
    StoreTimeout,
    TemporarilyUnavailable,
    Unavailable,
    WrongLastSequence,
)

__all__ = [
    "JS",
    "StoredMsg",
    "translate",
    "translate_api_reply",
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
]

log = logging.getLogger("ledger.nats")

# Header names as the server spells them (case-sensitive on the server, see NATS_NOTES.md).
MSG_ID = js_api.Header.MSG_ID.value
EXPECTED_LAST_SUBJECT_SEQ = js_api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value
# nats-server >= 2.11: the CAS above checks the last sequence of this subject filter (wildcards
# allowed) instead of the published subject's. nats-py has no constant for it.
EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"


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


class JS(IntEnum):
    """The JetStream error codes (``err_code``) this project acts on, by what they mean."""

    WRONG_LAST_SEQUENCE = 10071  # CAS lost, single node ("wrong last sequence: <n>")
    WRONG_LAST_SEQUENCE_CLUSTERED = 10164  # CAS lost on a replicated stream (nats-py's KV: same)
    STREAM_NOT_FOUND = 10059
    INSUFFICIENT_RESOURCES = 10023  # the server's JetStream limits are reached
    MEMORY_RESOURCES_EXCEEDED = 10028
    STORAGE_RESOURCES_EXCEEDED = 10047  # max_file_store reached: "insufficient storage resources"
    CLUSTER_NOT_AVAILABLE = 10008  # "JetStream system temporarily unavailable" (no meta leader)
    TEMPORARILY_UNAVAILABLE = 10163  # clustered only: the stream cannot take the request now


WRONG_LAST_SEQUENCE_CODES = frozenset({JS.WRONG_LAST_SEQUENCE, JS.WRONG_LAST_SEQUENCE_CLUSTERED})
STORE_FULL_CODES = frozenset(
    {JS.INSUFFICIENT_RESOURCES, JS.MEMORY_RESOURCES_EXCEEDED, JS.STORAGE_RESOURCES_EXCEEDED}
)
RETRYABLE_CODES = frozenset({JS.CLUSTER_NOT_AVAILABLE, JS.TEMPORARILY_UNAVAILABLE})

# Not answered now, answered soon: a leader election, a reconnect to another node.
_TEMPORARY = (
    nats.js.errors.NoStreamResponseError,  # js.publish: "no response from stream"
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
)
_UNREACHABLE = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.UnexpectedEOF,
    ConnectionError,
    OSError,
)


def _actual_seq(description: str | None) -> int | None:
    """``wrong last sequence: 42`` -> 42 (None when the server did not say)."""
    tail = (description or "").rsplit(":", 1)[-1].strip()
    return int(tail) if tail.isdigit() else None


def translate(exc: BaseException, what: str) -> LedgerError:
    """The project's error for a nats-py (or socket) exception raised while doing ``what``."""
    if isinstance(exc, LedgerError):
        return exc
    if isinstance(exc, TimeoutError | nats.errors.TimeoutError):
        return StoreTimeout(f"NATS did not answer in time ({what})")
    if isinstance(exc, nats.js.errors.APIError):
        return _translate_api(exc, what)
    if isinstance(exc, _TEMPORARY):
        return TemporarilyUnavailable(f"JetStream is not answering yet ({what}): {type(exc).__name__}")
    if isinstance(exc, _UNREACHABLE):
        return Unavailable(f"NATS is unavailable ({what}): {type(exc).__name__}")
    if isinstance(exc, nats.errors.Error):
        return Unavailable(f"NATS error ({what}): {exc}")
    raise TypeError(f"not a NATS error: {exc!r}")


def _translate_api(exc: nats.js.errors.APIError, what: str) -> LedgerError:
    code, text = exc.err_code, exc.description or ""
    if code in WRONG_LAST_SEQUENCE_CODES:
        return WrongLastSequence(f"{text} ({what}, code {code})", actual=_actual_seq(text))
    if isinstance(exc, nats.js.errors.NotFoundError):
        return NotFound(f"not found ({what})")
    if code == JS.STREAM_NOT_FOUND:
        return Unavailable(f"stream does not exist ({what}); run `python -m ledger streams apply`")
    if code in STORE_FULL_CODES:
        return Unavailable(f"JetStream cannot store more ({what}): {text}")
    if code in RETRYABLE_CODES or exc.code == 503:
        # 503 without a code we know: JetStream's "temporarily unavailable" family, not storage.
        return TemporarilyUnavailable(f"JetStream is temporarily unavailable ({what}): {text} (code {code})")
    return LedgerError(f"JetStream refused {what}: {text} (code {code})")


def translate_api_reply(error: dict[str, Any], what: str) -> LedgerError:
    """The project's error for the ``error`` object of a raw JetStream API reply."""
    try:
        nats.js.errors.APIError.from_error(dict(error))  # raises the class nats-py would
    except nats.js.errors.APIError as exc:
        return _translate_api(exc, what)
    return LedgerError(f"JetStream refused {what}: {error}")


@contextlib.contextmanager
def nats_errors(what: str) -> Iterator[None]:
    """Translate nats-py exceptions raised inside the block (``translate``)."""
    try:
        yield
    except LedgerError:
        raise
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        raise translate(exc, what) from None


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
                    detail = f"multi-last get: {status} {headers.get('Description', '')}".strip()
                    if status in ("503", "408"):  # no responders yet (an election), a timeout: retryable
                        raise TemporarilyUnavailable(f"JetStream is not answering yet ({detail})")
                    raise LedgerError(f"{detail} failed")
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
