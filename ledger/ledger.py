"""``Ledger``: append changes with optimistic concurrency, read current/past/versioned state.

Load the service's heads (``ledger.heads``: its last config event, schema and rollout, kept in
memory between writes) -> decide (pure, ``ledger.event.new_event``; the schema in force; the
caller's guard) -> append with ``Nats-Expected-Last-Subject-Sequence`` = the heads' sequence on
``config.*.<service>`` (CAS over every family of the service) and ``Nats-Msg-Id`` (dedup). A
refused CAS reads the heads again and decides again. See DESIGN.md, "Write path", and
NATS_NOTES.md for the JetStream behaviour this relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS

from . import nats_io, watch
from .errors import (
    InvalidChange,
    InvalidConfig,
    LedgerError,
    NotFound,
    Unavailable,
    VersionConflict,
    WrongLastSequence,
)
from .event import (
    Change,
    Event,
    Rollback,
    check_provenance,
    format_time,
    idempotency_event_id,
    is_noop,
    new_event,
)
from .heads import Family, Heads
from .nats_io import EXPECTED_LAST_SUBJECT_SEQ, EXPECTED_LAST_SUBJECT_SEQ_SUBJECT, MSG_ID, StoredMsg
from .retry import within_deadline
from .schema import validate as validate_schema
from .settings import LedgerSettings
from .validate import validate_service_name

__all__ = ["Ledger", "Entry", "Appended", "Guard", "Heads"]

# A caller's check of the heads a write is decided on (the fleet's rollout guard, the schema
# registry's "the current config must satisfy the new schema"): raise to refuse the write.
Guard = Callable[[Heads], None]

log = logging.getLogger("ledger")

@dataclass(frozen=True)
class Entry:
    """An event with where and when the stream stored it."""

    event: Event
    seq: int
    stored_at: datetime

    @classmethod
    def from_stored(cls, msg: StoredMsg) -> Entry:
        return cls(Event.from_bytes(msg.data), msg.seq, msg.stored_at)


@dataclass(frozen=True)
class Appended:
    """Result of ``Ledger.append``: the stored event, its stream sequence, whether a retry."""

    event: Event
    seq: int
    duplicate: bool = False
    unchanged: bool = False  # a no-op (``event.is_noop``): nothing appended, ``event`` is the current one

    @property
    def version(self) -> int:
        return self.event.version


class Ledger:
    """The ledger of every service's config, on one JetStream stream."""

    def __init__(self, nc: NATS, settings: LedgerSettings | None = None, *, owns_connection: bool = False):
        self.nc = nc
        self.js = nc.jetstream(timeout=(settings or LedgerSettings()).request_timeout)
        self.settings = settings or LedgerSettings()
        self._owns = owns_connection
        self._family = Family.SCHEMA if self.settings.is_schema_ledger else Family.CONFIG
        self._heads: dict[str, Heads] = {}  # service -> what the last write decided on (CAS-checked)
        self.max_attempts = 64

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str | None = None, settings: LedgerSettings | None = None) -> _Connector:
        """``async with Ledger.connect(url) as led`` (or ``led = await Ledger.connect(url)``)."""
        settings = settings or LedgerSettings()
        if url:
            settings = settings.model_copy(update={"nats_url": url})
        return _Connector(cls, settings)

    async def close(self) -> None:
        if self._owns and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:  # noqa: BLE001 - closing must not raise (server may be gone)
                with contextlib.suppress(Exception):
                    await self.nc.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_connected(self, grace: float = 2.0) -> None:
        """Return once NATS is connected: at once, or after a reconnect (to another node of a
        cluster when one died: well under a second) within ``grace`` s; else ``Unavailable``."""
        if self.nc.is_connected:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(grace, self.settings.write_deadline)
        while not self.nc.is_connected:
            if self.nc.is_closed or loop.time() >= deadline:
                raise Unavailable("NATS is not connected; the change was not recorded, retry later")
            await asyncio.sleep(0.02)

    # --- reads -------------------------------------------------------------------------------

    def subject(self, service: str) -> str:
        return self.settings.subject(validate_service_name(service))

    async def _last_entry(self, service: str) -> Entry | None:
        subject = self.subject(service)
        msg = await self._read(f"read the last event of {subject}",
                               lambda t: nats_io.direct_last(self.nc, self.settings.stream, subject, timeout=t))
        return Entry.from_stored(msg) if msg else None

    async def _read(self, what: str, call: Callable[[float], Awaitable[StoredMsg | None]]) -> StoredMsg | None:
        """A direct get, retried through a leader election or a reconnect (``ledger.retry``)."""
        return await within_deadline(call, what=what, deadline_s=self.settings.write_deadline,
                                     request_timeout=self.settings.request_timeout)

    async def current_entry(self, service: str) -> Entry | None:
        return await self._last_entry(service)

    def known(self, service: str) -> tuple[int, Event] | None:
        """The newest ``(stream seq, event)`` of ``service`` this ledger read or appended (a hint)."""
        heads = self._heads.get(service)
        return heads.own(self._family) if heads else None

    async def heads(self, service: str) -> Heads:
        """Every family of ``service`` as of one stream sequence: one ``multi_last`` direct get."""
        filter_ = self.settings.family_filter(validate_service_name(service))
        msgs = await within_deadline(
            lambda t: nats_io.direct_multi_last(self.nc, self.settings.stream, [filter_], batch=16, timeout=t),
            what=f"read the heads of {filter_}", deadline_s=self.settings.write_deadline,
            request_timeout=self.settings.request_timeout,
        )
        return Heads.of(msgs, self.settings, service)

    async def current(self, service: str) -> Event | None:
        """The latest event of ``service`` (its ``config`` is the current document), or None."""
        entry = await self.current_entry(service)
        return entry.event if entry else None

    async def at_entry(self, service: str, instant: datetime) -> Entry | None:
        msg = await nats_io.direct_at(
            self.nc, self.settings.stream, self.subject(service), instant,
            timeout=self.settings.request_timeout,
        )
        return Entry.from_stored(msg) if msg else None

    async def at(self, service: str, instant: datetime) -> Event | None:
        """The event that was current at ``instant`` (stream store time), or None before the first."""
        entry = await self.at_entry(service, instant)
        return entry.event if entry else None

    async def at_version_entry(self, service: str, version: int) -> Entry | None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidChange("version must be a positive integer")
        last = await self._last_entry(service)
        if last is None or version > last.event.version:
            return None
        if version == last.event.version:
            return last
        # Versions grow with stream sequence: binary search the smallest seq s whose next message
        # on this subject has version >= the one asked for (O(log n) direct gets, no consumer).
        # Invariant: the answer is in [lo, hi]; every step strictly shrinks the interval.
        subject, lo, hi = self.subject(service), 1, last.seq
        while lo < hi:
            mid = (lo + hi) // 2
            msg = await nats_io.direct_next(self.nc, self.settings.stream, subject, mid)
            if msg is None:  # cannot happen below last.seq
                return None
            if Event.from_bytes(msg.data).version >= version:
                hi = mid
            else:
                lo = msg.seq + 1
        found = await nats_io.direct_next(self.nc, self.settings.stream, subject, lo)
        if found is None:
            return None
        entry = Entry.from_stored(found)
        return entry if entry.event.version == version else None

    async def at_version(self, service: str, version: int) -> Event | None:
        entry = await self.at_version_entry(service, version)
        return entry.event if entry else None

    async def history_entries(self, service: str, *, start_seq: int | None = None) -> AsyncIterator[Entry]:
        last = await self._last_entry(service)
        if last is None:
            return
        async for msg in watch.replay(
            self.nc, self.settings.stream, self.subject(service), start_seq=start_seq, stop_seq=last.seq
        ):
            yield Entry.from_stored(msg)

    async def history(self, service: str) -> AsyncIterator[Event]:
        """Every event of ``service``, oldest first."""
        async for entry in self.history_entries(service):
            yield entry.event

    async def services(self, instant: datetime | None = None) -> list[Entry]:
        """The latest entry of every service (as of ``instant``), deletions included."""
        msgs = await nats_io.direct_multi_last(
            self.nc,
            self.settings.stream,
            [self.settings.subject_wildcard],
            up_to=instant,
            timeout=self.settings.request_timeout,
        )
        return [Entry.from_stored(m) for m in msgs]

    async def schema_in_force(self, service: str) -> Event | None:
        """The event of the service's JSON Schema now in force (None: none, or removed), read
        now. (``append`` decides on its heads instead: the CAS covers the schema's subject.)"""
        if self.settings.is_schema_ledger:
            return None
        subject = f"{self.settings.schema_prefix}.{validate_service_name(service)}"
        msg = await self._read(f"read the schema in force ({subject})",
                               lambda t: nats_io.direct_last(self.nc, self.settings.stream, subject, timeout=t))
        if msg is None:
            return None
        event = Event.from_bytes(msg.data)
        return event if event.config is not None else None

    # --- writes ------------------------------------------------------------------------------

    async def append(
        self,
        service: str,
        change: Change,
        *,
        actor: str,
        reason: str = "",
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        now: Callable[[], datetime] | None = None,
        metadata: dict[str, str] | None = None,
        guard: Guard | None = None,
    ) -> Appended:
        """Append ``change`` to ``service``; see the module docstring for the protocol.

        Raises VersionConflict (``expected_version`` given and not current), InvalidConfig /
        InvalidChange (nothing appended), what ``guard`` raises, Unavailable / StoreTimeout
        (outcome unknown for a timeout: retry with the same ``idempotency_key``). A refusal is
        only ever decided on heads read for this append, never on heads kept from earlier.
        """
        subject = self.subject(service)
        if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0
        ):
            raise InvalidChange("expected_version must be a non-negative integer")
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 200:
                raise InvalidChange("idempotency key must be 1-200 characters")
            event_id = idempotency_event_id(service, idempotency_key)
        else:
            event_id = str(uuid.uuid4())
        clock = now or (lambda: datetime.now(UTC))
        heads = self._heads.get(service)
        fresh = heads is None
        for attempt in range(self.max_attempts):
            if heads is None:
                heads, fresh = self._keep(service, await self.heads(service)), True
            own = heads.own(self._family)
            last_seq, last_event = own if own else (0, None)
            if last_event is not None and last_event.event_id == event_id:
                return Appended(last_event, last_seq, duplicate=True)  # retried after success
            try:
                event = await self._decide(service, change, heads, last_event, event_id, expected_version,
                                           actor=actor, reason=reason, occurred_at=clock(), metadata=metadata,
                                           guard=guard)
            except LedgerError:
                if fresh:
                    raise
                heads = None  # refused on heads kept from earlier: decide on the stream's now
                continue
            if event is None:  # a no-op: nothing to append (only ever said on fresh heads)
                if not fresh:
                    heads = None
                    continue
                assert last_event is not None
                return Appended(last_event, last_seq, duplicate=False, unchanged=True)
            result = await self._publish(subject, event, heads.seq)
            if result is not None:
                if result.duplicate:
                    self._heads.pop(service, None)  # where the family's head is now is unknown
                else:
                    self._keep(service, heads.appended(self._family, result.seq, result.event))
                return result
            # Something of the service moved since the heads: read them again and decide again.
            heads, fresh = None, True
            self._heads.pop(service, None)
            if attempt >= 3:
                await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
        raise LedgerError(f"gave up appending to {service!r} after {self.max_attempts} conflicting attempts")

    def _keep(self, service: str, heads: Heads) -> Heads:
        """Remember ``heads`` for the next write unless a newer one is kept (concurrent writes)."""
        kept = self._heads.get(service)
        if kept is None or kept.seq <= heads.seq:
            self._heads[service] = heads
        return heads

    async def _decide(
        self,
        service: str,
        change: Change,
        heads: Heads,
        last_event: Event | None,
        event_id: str,
        expected_version: int | None,
        *,
        actor: str,
        reason: str,
        occurred_at: datetime,
        metadata: dict[str, str] | None,
        guard: Guard | None,
    ) -> Event | None:
        """The event to append on ``heads`` (None: the change is a no-op); raises what refuses it."""
        current_version = last_event.version if last_event else 0
        if expected_version is not None and expected_version != current_version:
            raise VersionConflict(service, expected_version, current_version)
        if guard is not None:
            guard(heads)
        if is_noop(last_event, change):
            check_provenance(actor, reason, self.settings.limits)  # a refused reason stays refused
            return None
        target = await self._rollback_target(service, change, last_event)
        event = new_event(
            last_event,
            service,
            change,
            actor=actor,
            reason=reason,
            occurred_at=occurred_at,
            event_id=event_id,
            target=target,
            limits=self.settings.limits,
            metadata=metadata,
        )
        schema = heads.schema_in_force if self._family is Family.CONFIG else None
        if schema is not None and event.config is not None:
            validate_schema(service, schema.version, schema.config or {}, event.config)
        return event

    async def _rollback_target(self, service: str, change: Change, last: Event | None) -> Event | None:
        if not isinstance(change, Rollback):
            return None
        if last is None:
            raise NotFound(f"Config not found for service: {service}")
        if change.to_version is not None:
            if change.to_version >= last.version:
                raise InvalidChange(
                    f"cannot roll back to version {change.to_version}: current version is {last.version}"
                )
            target = await self.at_version(service, change.to_version)
            if target is None:
                raise NotFound(f"version {change.to_version} of {service!r} does not exist")
            return target
        assert change.to_time is not None
        target = await self.at(service, change.to_time)
        if target is None:
            raise NotFound(f"{service!r} had no config at {format_time(change.to_time)}")
        return target

    async def _publish(self, subject: str, event: Event, expected_seq: int) -> Appended | None:
        """Publish with CAS on the service's every subject (``family_filter``); return the
        stored result, or None when something of the service moved first.

        A timeout, a leader election, "no responders" or a reconnect is retried with the same
        ``Nats-Msg-Id`` and the same expected sequence (never a duplicate: dedup, and the
        "wrong last sequence" check that finds our own landed attempt) until
        ``settings.write_deadline``; past it, ``StoreTimeout``: it may or may not be stored.
        """
        data = event.to_bytes()
        if len(data) > 1024 * 1024:
            raise InvalidConfig("document.size", "event is larger than the stream's 1 MiB message limit")
        headers = {MSG_ID: event.event_id, EXPECTED_LAST_SUBJECT_SEQ: str(expected_seq),
                   EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: self.settings.family_filter(event.service)}

        async def attempt(timeout: float) -> Any:
            try:  # a fresh dict each time: nats-py adds to the one it is given
                return await self.js.publish(
                    subject, data, stream=self.settings.stream, headers=dict(headers), timeout=timeout
                )
            except (TimeoutError, OSError, nats.errors.Error) as exc:
                raise nats_io.translate(exc, f"append to {subject}") from None

        try:
            ack = await within_deadline(attempt, what=f"append to {subject}", ambiguous=True,
                                        deadline_s=self.settings.write_deadline,
                                        request_timeout=self.settings.request_timeout)
        except WrongLastSequence:
            return await self._resolve_conflict(subject, event.event_id, expected_seq)
        if ack.duplicate:
            return await self._stored_at(subject, ack.seq, duplicate=True)
        return Appended(event, ack.seq)

    async def _resolve_conflict(self, subject: str, event_id: str, expected_seq: int) -> Appended | None:
        """Wrong last sequence: was it our own earlier attempt (lost ack) that moved the subject on?"""
        msg = await self._read(f"read {subject} after sequence {expected_seq}", lambda t: nats_io.direct_next(
            self.nc, self.settings.stream, subject, expected_seq + 1, timeout=t))
        if msg is not None and msg.msg_id == event_id:
            return Appended(Event.from_bytes(msg.data), msg.seq, duplicate=True)
        return None

    async def _stored_at(self, subject: str, seq: int, *, duplicate: bool) -> Appended:
        msg = await self._read(f"read {subject} at sequence {seq}", lambda t: nats_io.direct_next(
            self.nc, self.settings.stream, subject, seq, timeout=t))
        if msg is None or msg.seq != seq:
            raise LedgerError(f"acknowledged sequence {seq} is not on {subject}")
        return Appended(Event.from_bytes(msg.data), seq, duplicate=duplicate)


class _Connector:
    """What ``Ledger.connect`` returns: awaitable, and an async context manager."""

    def __init__(self, cls: type[Ledger], settings: LedgerSettings) -> None:
        self._cls, self._settings, self._ledger = cls, settings, None

    async def _open(self) -> Ledger:
        nc = await nats_io.connect(
            self._settings.nats_url, name="config-ledger", connect_timeout=self._settings.connect_timeout
        )
        return self._cls(nc, self._settings, owns_connection=True)

    def __await__(self) -> Generator[Any, None, Ledger]:
        return self._open().__await__()

    async def __aenter__(self) -> Ledger:
        self._ledger = await self._open()  # type: ignore[assignment]
        return self._ledger  # type: ignore[return-value]

    async def __aexit__(self, *exc: object) -> None:
        if self._ledger is not None:
            await self._ledger.close()


