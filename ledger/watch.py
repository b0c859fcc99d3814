"""Watch a stream subject: an async iterator of stored messages with a "caught up" marker.

``StreamWatcher`` is one ordered push consumer (ack none, flow control, idle heartbeats; made by
``ledger.consumer``) on a subject (wildcards allowed), delivering to a callback that feeds a
queue — ``next_msg`` costs a task per message and answers flow control only from a poll, which
caps bulk replays at a few thousand messages/s. It yields ``StoredMsg`` in stream order, and
``None`` each time it has caught up (like nats.py's ``KeyWatcher``). It re-creates its consumer
from the last sequence it delivered when the connection comes back, on ``resync``, on a gap in
the consumer sequence, and when the consumer falls silent (its server died: in a cluster the
connection may be to another, live server) — with one log line when it is back. It reads
through JetStream, never a core subscription: those also see publishes the stream rejected.

``replay`` is the finite form: stored messages up to a sequence, then it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from .consumer import (
    HEARTBEAT,
    Delivery,
    Recovery,
    Silence,
    ack_fields,
    create_consumer,
    ephemeral_config,
    status_of,
)
from .errors import LedgerError
from .event_loop import raise_if_cancelling
from .nats_io import StoredMsg, nats_errors, stream_last_seq
from .settings import LedgerSettings

__all__ = ["Delivery", "StreamWatcher", "ack_fields", "replay"]

log = logging.getLogger("ledger.watch")

_WAKE = object()
_RESET = object()  # the consumer must be re-created (gap, deleted)


class StreamWatcher:
    """Stored messages on ``subject``, in order, across reconnects and node losses.

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
        heartbeat: float = HEARTBEAT,
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
        self.recovery = Recovery(log, f"watch {subject}")
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._gen = 0
        self._sub: Any = None
        self._cseq = 0  # consumer sequence of the last delivery yielded from the current consumer
        self._received = 0  # deliveries of the current consumer received (queued) so far
        self._silence = Silence(heartbeat)
        self._need_subscribe = True

    def reconnected(self) -> None:
        """The connection is back: re-subscribe after ``last_seq`` now, not after heartbeats."""
        self._need_subscribe = True
        self._queue.put_nowait(_WAKE)

    def resync(self, after_seq: int) -> None:
        """Deliver again everything after stream sequence ``after_seq``."""
        self.last_seq = after_seq
        self.reconnected()

    async def _subscribe(self) -> int:
        """Replace the subscription; return how many messages the new consumer has pending."""
        await self._drop_subscription()
        self._gen += 1
        gen = self._gen
        self._cseq = self._received = 0
        inbox = self._nc.new_inbox()

        async def deliver(msg: Msg) -> None:
            if gen == self._gen:
                await self._on_msg(gen, msg)

        config = ephemeral_config(self.subject, after_seq=self.last_seq, deliver_subject=inbox,
                                  heartbeat=self.heartbeat)
        with nats_errors(f"subscribe to {self.subject}"):
            self._sub = await self._nc.subscribe(inbox, cb=deliver)
        info = await create_consumer(self._js, self._stream, config)
        self._silence.heard()
        self.subscriptions += 1
        return int(info.num_pending or 0)

    async def _on_msg(self, gen: int, msg: Msg) -> None:
        self._silence.heard()
        status = status_of(msg)
        if status is None:
            self._received += 1
            self._queue.put_nowait((gen, msg))
            return
        code, description = status
        if code == "100":
            if msg.reply:  # flow control: answered on receipt (the queue is ours and unbounded)
                with contextlib.suppress(Exception):
                    await self._nc.publish(msg.reply)
            headers = msg.headers or {}
            stalled = headers.get("Nats-Consumer-Stalled")
            if stalled:
                with contextlib.suppress(Exception):
                    await self._nc.publish(stalled)
            last = headers.get("Nats-Last-Consumer")
            if last and last.isdigit() and int(last) > self._received:
                self._queue.put_nowait((gen, _RESET, f"heartbeat says consumer sequence {last}, "
                                                     f"we received {self._received}"))
            return
        self._queue.put_nowait((gen, _RESET, f"status {code} {description}".strip()))

    async def _drop_subscription(self) -> None:
        sub, self._sub = self._sub, None
        self._gen += 1
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone; the consumer expires
                await sub.unsubscribe()

    def _lost(self, why: str) -> None:
        self.recovery.lost(why)
        self._need_subscribe = True

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
                        self.recovery.lost(exc.message)
                        (log.warning if delay == 0.05 else log.debug)(
                            "cannot subscribe to %s yet: %s; retrying", self.subject, exc.message
                        )
                        raise_if_cancelling()
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await self._queue.get()  # a wake-up, or retry
                        delay = min(delay * 2, self.retry_max)
                        continue
                    delay = 0.05
                    self.recovery.recovered((self.last_seq or 0) + 1)
                    if pending == 0:
                        yield None
                # A bulk replay finds the queue full: no timer per message. ``asyncio.timeout``,
                # not ``wait_for``: on 3.11 ``wait_for`` swallows a cancellation that arrives
                # with an item (the watcher then never stops).
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    raise_if_cancelling()  # (nats-py's requests can swallow one, e.g. in _subscribe)
                    try:
                        async with asyncio.timeout(self.heartbeat / 2):
                            item = await self._queue.get()
                    except TimeoutError:
                        quiet = self._silence.exceeded()
                        if quiet is not None:
                            self._lost(f"no message and no heartbeat for {quiet:.1f} s")
                        continue
                if item is _WAKE:
                    continue
                if item[0] != self._gen:
                    continue  # from a subscription already replaced
                if item[1] is _RESET:
                    self._lost(item[2])
                    continue
                msg = item[1]
                seq, cseq, stored_at, pending = ack_fields(msg.reply)
                if cseq != self._cseq + 1:
                    self._lost(f"consumer sequence jumped from {self._cseq} to {cseq}")
                    continue
                self._cseq = cseq
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

    A replay, not a watch: it ends.
    """
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
