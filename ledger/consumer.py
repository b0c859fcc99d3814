"""JetStream consumers of the ledger stream: how they are made, watched and re-made (one place).

Both readers of the stream — ``ledger.watch.StreamWatcher`` (clients, the API, replays) and
``projector.stream.StreamReader`` — use an ephemeral R1 in-memory consumer with AckPolicy NONE,
started right after the last sequence they handled. Such a consumer lives on one server: when
that server dies (the stream leader or a follower) the consumer is gone, and a reader connected
to another server is not told. So:

- every consumer sends idle heartbeats every ``HEARTBEAT`` s (0.5 s);
- a reader that hears nothing for ``silence_limit(heartbeat)`` (two heartbeats and a margin)
  treats the consumer as lost and re-creates it from its next sequence;
- creation is asked with a short timeout (``CREATE_TIMEOUT``) and retried, so a request that
  went to a dead meta leader does not hold recovery for the full request timeout;
- ``Recovery`` writes one log line when a lost consumer is running again, with the gap.

Why not a replicated (R3) durable consumer: its leader election after a node loss takes as
long as the stream's (5-8 s here), re-creation takes well under a second once a meta leader
exists, and the reader's own position (its last sequence, or the projector's checkpoint) is
what makes delivery exactly-once anyway.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from nats.js import api as js_api

from .nats_io import nats_errors

__all__ = [
    "HEARTBEAT",
    "CREATE_TIMEOUT",
    "Delivery",
    "Recovery",
    "Silence",
    "ack_fields",
    "create_consumer",
    "delete_consumer",
    "ephemeral_config",
    "silence_limit",
    "status_of",
]

HEARTBEAT = 0.5  # idle heartbeat of every consumer (s)
MISSED_HEARTBEATS = 2  # silence of this many heartbeats (and half one more) = the consumer is lost
CREATE_TIMEOUT = 0.5  # one consumer-create request (a few ms when healthy); retried by the reader

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


def status_of(msg: Any) -> tuple[str, str] | None:
    """``(status, description)`` of a JetStream control message (heartbeat, flow control,
    pull status), or None for a stored message."""
    headers = msg.headers
    if not headers:
        return None
    status = headers.get("Status")
    if not status:
        return None
    return str(status), str(headers.get("Description", ""))


def silence_limit(heartbeat: float) -> float:
    return MISSED_HEARTBEATS * heartbeat + heartbeat / 2


def ephemeral_config(
    subject: str,
    *,
    after_seq: int | None,
    deliver_subject: str | None = None,
    heartbeat: float = HEARTBEAT,
    inactive_threshold: float | None = None,
) -> js_api.ConsumerConfig:
    """An R1 in-memory AckPolicy NONE consumer of ``subject`` from ``after_seq + 1`` (or the
    last message of every matching subject when ``after_seq`` is None).

    With ``deliver_subject``: a push consumer with flow control and idle heartbeats (what
    nats-py's ordered consumer creates); without: a pull consumer (its pull requests ask for
    heartbeats). A fresh config per call: nats-py mutates it.
    """
    if after_seq is None:
        start: dict[str, Any] = {"deliver_policy": js_api.DeliverPolicy.LAST_PER_SUBJECT}
    else:
        start = {"deliver_policy": js_api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": after_seq + 1}
    push: dict[str, Any] = {}
    if deliver_subject is not None:
        push = {"deliver_subject": deliver_subject, "flow_control": True, "idle_heartbeat": heartbeat}
    if inactive_threshold is not None:
        push["inactive_threshold"] = inactive_threshold
    return js_api.ConsumerConfig(
        filter_subject=subject,
        ack_policy=js_api.AckPolicy.NONE,
        max_deliver=1,
        ack_wait=22 * 3600,
        num_replicas=1,
        mem_storage=True,
        **start,
        **push,
    )


async def create_consumer(
    js: Any, stream: str, config: js_api.ConsumerConfig, *, timeout: float = CREATE_TIMEOUT
) -> js_api.ConsumerInfo:
    """Create the consumer; nats-py errors come out as the ledger's (``TemporarilyUnavailable``
    while a cluster has no meta leader, ``StoreTimeout`` when nobody answered in time)."""
    with nats_errors(f"create a consumer on {config.filter_subject}"):
        return await js.add_consumer(stream, config, timeout=timeout)


async def delete_consumer(js: Any, stream: str, name: str, *, timeout: float = CREATE_TIMEOUT) -> None:
    """Delete a consumer we no longer read, best effort: the server holding it may be dead (it
    then expires by itself); never wait longer than ``timeout``."""
    with contextlib.suppress(Exception):
        await js.delete_consumer(stream, name, timeout=timeout)


class Silence:
    """When a consumer was last heard from (a message, a heartbeat, any status)."""

    def __init__(self, heartbeat: float) -> None:
        self.limit = silence_limit(heartbeat)
        self.last = time.monotonic()

    def heard(self) -> None:
        self.last = time.monotonic()

    def exceeded(self) -> float | None:
        """Seconds of silence when past the limit, else None."""
        quiet = time.monotonic() - self.last
        return quiet if quiet > self.limit else None


class Recovery:
    """One log line per loss: when a consumer that was lost is delivering again, and the gap."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.lost_at: float | None = None
        self.why = ""
        self.recoveries = 0
        self.last_gap: float | None = None

    def lost(self, why: str) -> None:
        if self.lost_at is None:
            self.lost_at = time.monotonic()
            self.why = why

    def recovered(self, seq: int) -> None:
        if self.lost_at is None:
            return
        gap = time.monotonic() - self.lost_at
        self.lost_at = None
        self.recoveries += 1
        self.last_gap = gap
        self.log.warning(
            "%s: consumer re-created at stream sequence %d, %.2f s after it was lost (%s)",
            self.what, seq, gap, self.why,
        )

