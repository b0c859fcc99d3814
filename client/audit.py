"""``AuditReader``: the ledger's history straight from the stream, with no API and no PostgreSQL.

::

    async with AuditReader.connect("nats://127.0.0.1:4222") as audit:
        for entry in await audit.history("billing"): ...
        then = await audit.state_at("billing", instant)      # Entry | None
        fleet = await audit.snapshot_at(instant)             # {service: Entry}, one request
        async for entry in audit.replay("billing", until=instant): ...
        report = await audit.verify()                        # ChainReport: .ok, .problems
        fleet = await audit.verify_fleet()                   # FleetReport: rollouts, decisions re-run

"As of an instant" means the same here as in ``Ledger.at()`` and the API: the stream's store
time, inclusive to the microsecond (``up_to_time`` of a direct get). Entries whose event is a
deletion (``event.config is None``) are included everywhere, as in ``Ledger.services()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from datetime import datetime, timedelta
from typing import Any, cast

from nats.aio.client import Client as NATS

from ledger import ChainReport, Entry, Event, LedgerSettings, nats_io, validate_service_name
from ledger.errors import InvalidConfig, ProjectionDiverged, UsageError
from ledger.fleet_events import FleetEvent, FleetReport
from ledger.fold import ChainState
from ledger.nats_io import StoredMsg

from .stream_source import StreamWatcher

__all__ = ["AuditReader"]


class AuditReader:
    """Read-only, verifying access to every service's history on the stream."""

    def __init__(
        self,
        nc: NATS | None = None,
        settings: LedgerSettings | None = None,
        *,
        owns_connection: bool = False,
    ) -> None:
        self.settings = settings or LedgerSettings()
        self._nc = nc
        self._owns = owns_connection

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def connect(cls, nats_url: str | None = None, settings: LedgerSettings | None = None) -> AuditReader:
        """``async with AuditReader.connect(url) as audit`` (or ``audit = await AuditReader.connect(url)``)."""
        settings = settings or LedgerSettings()
        if nats_url:
            settings = settings.model_copy(update={"nats_url": nats_url})
        return cls(None, settings, owns_connection=True)

    async def _open(self) -> AuditReader:
        if self._nc is None:
            self._nc = await nats_io.connect(
                self.settings.nats_url, name="config-audit", connect_timeout=self.settings.connect_timeout
            )
        return self

    def __await__(self) -> Generator[Any, None, AuditReader]:
        return self._open().__await__()

    async def __aenter__(self) -> AuditReader:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if self._owns and nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):  # closing must not raise (the server may be gone)
                await asyncio.wait_for(nc.close(), 5)

    @property
    def nc(self) -> NATS:
        if self._nc is None:
            raise UsageError("AuditReader is not connected: use `async with AuditReader.connect(url)`")
        return self._nc

    # --- reads -----------------------------------------------------------------------------

    def _subject(self, service: str | None) -> str:
        if service is None:
            return self.settings.subject_wildcard
        return self.settings.subject(validate_service_name(service))

    def _entry(self, msg: StoredMsg) -> Entry:
        try:
            return Entry.from_stored(msg)
        except InvalidConfig as exc:
            raise ProjectionDiverged(
                f"{msg.subject} holds a message that is not a valid event ({exc.message})",
                seq=msg.seq,
                service=self.settings.service_of(msg.subject),
            ) from None

    async def history(self, service: str) -> list[Entry]:
        """Every event of ``service``, oldest first (as stored, not verified: see ``verify``)."""
        subject = self._subject(service)
        last = await nats_io.direct_last(
            self.nc, self.settings.stream, subject, timeout=self.settings.request_timeout
        )
        if last is None:
            return []
        async with self._messages(service, last.seq) as msgs:
            return [self._entry(msg) async for msg in msgs]

    async def state_at(self, service: str, instant: datetime) -> Entry | None:
        """The entry that was current for ``service`` at ``instant``; None before its first event."""
        msg = await nats_io.direct_at(
            self.nc, self.settings.stream, self._subject(service), instant,
            timeout=self.settings.request_timeout,
        )
        return self._entry(msg) if msg else None

    async def snapshot_at(self, instant: datetime) -> dict[str, Entry]:
        """Every service's entry as of ``instant``: one direct get (``multi_last`` + ``up_to_time``)."""
        msgs = await nats_io.direct_multi_last(
            self.nc,
            self.settings.stream,
            [self.settings.subject_wildcard],
            up_to=instant,
            timeout=self.settings.request_timeout,
        )
        return {self.settings.service_of(msg.subject): self._entry(msg) for msg in msgs}

    async def _stop_seq(self, until: datetime | None) -> int:
        """The last stream sequence to replay: stored at or before ``until`` (to the microsecond)."""
        last = await nats_io.stream_last_seq(self.nc, self.settings.stream)
        if until is None or last == 0:
            return last
        after = await nats_io.direct_first_at_or_after(
            self.nc, self.settings.stream, until + timedelta(microseconds=1), timeout=self.settings.request_timeout
        )
        return last if after is None or after.seq > last else after.seq - 1

    async def replay(
        self, service: str | None = None, *, until: datetime | None = None, verify: bool = True
    ) -> AsyncIterator[Entry]:
        """Entries of ``service`` (all services when None) in stream order, up to ``until``.

        With ``verify`` (the default) each event is checked against the one before it (version
        continuity, ``prev_hash``, the hash recomputing, its own service's subject) and
        ProjectionDiverged is raised at the first that fails, naming its stream sequence.
        """
        chains = _Chains(self.settings)
        async with self._messages(service, await self._stop_seq(until)) as msgs:
            async for msg in msgs:
                yield chains.check(msg) if verify else self._entry(msg)

    def _messages(
        self, service: str | None, stop_seq: int
    ) -> contextlib.aclosing[AsyncGenerator[StoredMsg, None]]:
        """Stored messages of one service (or all) up to ``stop_seq``, closed on exit."""
        return contextlib.aclosing(self._scan(self._subject(service), stop_seq))

    async def _scan(self, subject: str, stop_seq: int) -> AsyncGenerator[StoredMsg, None]:
        # An ordered consumer delivering to a callback (``StreamWatcher``), not
        # ``nats_io.replay``: its ``next_msg`` costs a task per message and answers flow control
        # only from a 250 ms poll, which caps a bulk replay at a few thousand messages/s.
        if stop_seq == 0:
            return
        watcher = StreamWatcher(self.nc, self.settings, subject, after_seq=0)
        async with contextlib.aclosing(cast(AsyncGenerator[StoredMsg | None, None], aiter(watcher))) as items:
            async for msg in items:
                if msg is None or msg.seq > stop_seq:
                    return  # caught up: everything up to stop_seq was delivered
                yield msg
                if msg.seq == stop_seq:
                    return

    async def verify(self, service: str | None = None) -> ChainReport:
        """Check every chain (one service, or all): versions contiguous from 1, ``prev_hash``
        linking each event to the one before, every hash recomputing, each event on its own
        service's subject. Collects every broken chain instead of stopping at the first."""
        report = ChainReport()
        chains = _Chains(self.settings)
        broken: set[str] = set()
        stop = await nats_io.stream_last_seq(self.nc, self.settings.stream)
        async with self._messages(service, stop) as msgs:
            async for msg in msgs:
                report.events += 1
                name = self.settings.service_of(msg.subject)
                if name in broken:
                    continue
                try:
                    chains.check(msg)
                except ProjectionDiverged as exc:
                    report.problems.append(exc.message)
                    broken.add(name)
        report.services = len(chains.states.keys() | broken)
        return report

    async def fleet_history(self, service: str | None = None) -> dict[str, list[FleetEvent]]:
        """Every fleet event (rollouts, scheduled changes) of ``service`` or of every service,
        oldest first, by service. A message that is not a fleet event raises ProjectionDiverged."""
        subject = (self.settings.rollout_subject(validate_service_name(service)) if service is not None
                   else self.settings.rollout_wildcard)
        out: dict[str, list[FleetEvent]] = {}
        stop = await nats_io.stream_last_seq(self.nc, self.settings.stream)
        async with contextlib.aclosing(self._scan(subject, stop)) as msgs:
            async for msg in msgs:
                name = msg.subject[len(self.settings.rollout_prefix) + 1:]
                try:
                    event = FleetEvent.from_bytes(msg.data)
                except InvalidConfig as exc:
                    raise ProjectionDiverged(f"{msg.subject} holds a message that is not a fleet event "
                                             f"({exc.message})", seq=msg.seq, service=name) from None
                if event.service != name:
                    raise ProjectionDiverged(f"a fleet event of {event.service!r} is stored on the subject of "
                                             f"{name!r}", seq=msg.seq, service=name)
                out.setdefault(name, []).append(event)
        return out

    async def verify_fleet(self, service: str | None = None) -> FleetReport:
        """Check every fleet chain (one service, or all): ``seq``/``prev_hash`` links and hashes,
        each step a transition its kind allows, and every automatic rollout decision re-run on
        the numbers it recorded (``ledger.fleet_events``): replaying reproduces the decisions."""
        report = FleetReport()
        try:
            chains = await self.fleet_history(service)
        except ProjectionDiverged as exc:
            report.problems.append(exc.message)
            return report
        for name in sorted(chains):
            report.add(chains[name])
        return report


class _Chains:
    """Per-service chain checks over stored messages: the checks of ``ledger.fold.check_next``
    (versions contiguous from 1, ``prev_hash`` equal to the previous ``hash``, the hash
    recomputing) plus "stored on its own service's subject".

    Each message is parsed once (``Event.from_bytes``: no pydantic validation for the form the
    ledger writes) and its hash recomputed over the stored canonical bytes themselves (minus the
    ``hash`` member), which is what a bulk audit replay needs.
    """

    def __init__(self, settings: LedgerSettings) -> None:
        self.settings = settings
        self.states: dict[str, ChainState] = {}

    def check(self, msg: StoredMsg) -> Entry:
        """The entry ``msg`` holds, if it chains onto the last one of its service; else raise."""
        name = self.settings.service_of(msg.subject)

        def diverged(reason: str) -> ProjectionDiverged:
            return ProjectionDiverged(reason, seq=msg.seq, service=name)

        try:
            event = Event.from_bytes(msg.data)
        except (ValueError, InvalidConfig) as exc:
            detail = exc.message if isinstance(exc, InvalidConfig) else "not JSON"
            raise diverged(f"{msg.subject} holds a message that is not a valid event ({detail})") from None
        if event.service != name:
            raise diverged(f"an event of {event.service!r} is stored on the subject of {name!r}")
        state = self.states.get(name)
        expected = state.version + 1 if state else 1
        if event.version != expected:
            raise diverged(f"version gap for {name!r}: expected {expected}, got {event.version}")
        if event.prev_hash != (state.hash if state else ""):
            raise diverged(
                f"broken hash chain for {name!r} at version {event.version}: prev_hash does not "
                "match the previous event's hash"
            )
        if not event.hash_ok():
            raise diverged(f"hash of {name!r} version {event.version} does not recompute (event altered)")
        self.states[name] = ChainState(event.version, event.hash)
        return Entry(event, msg.seq, msg.stored_at)
