"""Watch a stream subject: an async iterator of stored messages with a "caught up" marker.

``StreamWatcher`` is one ordered push consumer (ack none, flow control, idle heartbeats) on a
subject (wildcards allowed), delivering to a callback that feeds a queue — ``next_msg`` costs a
task per message and answers flow control only from a poll, which caps bulk replays at a few
thousand messages/s. It yields ``StoredMsg`` in stream order, and ``None`` each time it has
caught up (like nats.py's ``KeyWatcher``). It re-subscribes itself from the last sequence it
delivered when the connection comes back or on ``resync``. It reads through JetStream, never a
core subscription: those also see publishes the stream rejected (NATS_NOTES.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import api as js_api

from .errors import LedgerError
from .nats_io import StoredMsg, nats_errors
from .settings import LedgerSettings

__all__ = ["Delivery", "StreamWatcher", "ack_fields"]

log = logging.getLogger("ledger.watch")

_WAKE = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Delivery(NamedTuple):
    """What a JetStream delivery's reply subject says about the message."""

    stream_seq: int
    consumer_seq: int
    stored_at: datetime
    pending: int


def ack_fields(reply: str) -> Delivery:
    """Parse a delivery's reply subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts ns>.<pending>``, or the form with
    ``<domain>.<account hash>`` after ``ACK`` and a trailing token. The store time is truncated
    to the microsecond exactly as ``nats_io.parse_nats_time`` does for direct gets (nats-py's
    ``msg.metadata.timestamp`` goes through a float and can be 1 µs off), and reading a few
    tokens costs a quarter of building ``msg.metadata``.
    """
    tokens = reply.split(".")
    if len(tokens) == 9:
        base = 2
    elif len(tokens) >= 11:
        base = 4
    else:
        raise ValueError(f"not a JetStream reply subject: {reply!r}")
    if tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream reply subject: {reply!r}")
    stored_at = _EPOCH + timedelta(microseconds=int(tokens[base + 5]) // 1000)
    return Delivery(int(tokens[base + 3]), int(tokens[base + 4]), stored_at, int(tokens[base + 6]))


class StreamWatcher:
    """Stored messages on ``subject``, in order, across reconnects.

    ``async for item in watcher`` yields ``StoredMsg``, or ``None`` each time the watcher has
    caught up with the stream (after subscribing, and whenever nothing more is pending).
    Without ``after_seq`` it starts with the last message of each matching subject
    (``LAST_PER_SUBJECT``: a service's current config); with it, from ``after_seq + 1``.
    """

    def __init__(
        self,
        nc: NATS,
        settings: LedgerSettings,
        subject: str,
        *,
        after_seq: int | None = None,
        heartbeat: float = 1.0,
        retry_max: float = 0.5,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=settings.request_timeout)
        self._stream = settings.stream
        self.subject = subject
        self.heartbeat = heartbeat
        self.retry_max = retry_max
        self.last_seq = after_seq  # stream sequence of the last message yielded
        self.subscriptions = 0  # consumers created so far (first one, then one per resync)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._gen = 0
        self._sub: Any = None
        self._need_subscribe = True

    def reconnected(self) -> None:
        """The connection is back: re-subscribe after ``last_seq`` now, not after heartbeats."""
        self._need_subscribe = True
        self._queue.put_nowait(_WAKE)

    def resync(self, after_seq: int) -> None:
        """Deliver again everything after stream sequence ``after_seq``."""
        self.last_seq = after_seq
        self.reconnected()

    def _consumer_config(self) -> js_api.ConsumerConfig:
        # What nats-py's js.subscribe(ordered_consumer=True) would create, made here so that the
        # create call's ConsumerInfo tells us whether anything is pending (an empty subject
        # delivers nothing, and "caught up" must not wait for a message that never comes).
        if self.last_seq is None:
            start: dict[str, Any] = {"deliver_policy": js_api.DeliverPolicy.LAST_PER_SUBJECT}
        else:
            start = {
                "deliver_policy": js_api.DeliverPolicy.BY_START_SEQUENCE,
                "opt_start_seq": self.last_seq + 1,
            }
        return js_api.ConsumerConfig(
            filter_subject=self.subject,
            deliver_subject=self._nc.new_inbox(),
            ack_policy=js_api.AckPolicy.NONE,
            flow_control=True,
            idle_heartbeat=self.heartbeat,
            max_deliver=1,
            ack_wait=22 * 3600,
            num_replicas=1,
            mem_storage=True,
            **start,
        )

    async def _subscribe(self) -> int:
        """Replace the subscription; return how many messages the new consumer has pending."""
        await self._drop_subscription()
        self._gen += 1
        gen = self._gen

        async def deliver(msg: Msg) -> None:
            self._queue.put_nowait((gen, msg))

        config = self._consumer_config()
        with nats_errors(f"subscribe to {self.subject}"):
            info = await self._js.add_consumer(self._stream, config)
            self._sub = await self._js.subscribe_bind(
                self._stream, config, info.name, cb=deliver, ordered_consumer=True
            )
        self.subscriptions += 1
        return int(info.num_pending or 0)

    async def _drop_subscription(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone; the consumer expires
                await sub.unsubscribe()

    async def __aiter__(self) -> AsyncGenerator[StoredMsg | None, None]:
        delay = 0.05
        try:
            while True:
                if self._need_subscribe:
                    self._need_subscribe = False
                    try:
                        pending = await self._subscribe()
                    except LedgerError as exc:
                        self._need_subscribe = True
                        (log.warning if delay == 0.05 else log.debug)(
                            "cannot subscribe to %s yet: %s; retrying", self.subject, exc.message
                        )
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self._queue.get(), delay)  # a wake-up, or retry
                        delay = min(delay * 2, self.retry_max)
                        continue
                    delay = 0.05
                    if pending == 0:
                        yield None
                item = await self._queue.get()
                if item is _WAKE:
                    continue
                gen, msg = item
                if gen != self._gen:
                    continue  # from a subscription already replaced
                seq, _, stored_at, pending = ack_fields(msg.reply)
                if self.last_seq is not None and seq <= self.last_seq:
                    if pending == 0:
                        yield None
                    continue  # delivered again after a consumer reset
                self.last_seq = seq
                yield StoredMsg(
                    subject=msg.subject,
                    seq=seq,
                    data=msg.data,
                    stored_at=stored_at,
                    headers=dict(msg.headers or {}),
                )
                if pending == 0:
                    yield None
        finally:
            await self._drop_subscription()
