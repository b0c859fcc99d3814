"""Atomic change sets: several services changed together, all stored or none.

Load every member's heads (``ledger.heads``) -> decide every member (pure ``new_event``, each
validated like a single write: the schema in force, the caller's guard such as the rollout
guard) -> publish the members as one JetStream atomic batch (``Nats-Batch-Id``,
``Nats-Batch-Sequence``, ``Nats-Batch-Commit: 1`` on the last; ``allow_atomic`` on the stream),
each with the CAS over its service's every subject (``config.*.<service>``). The server stores
nothing before the commit, and refuses the whole batch when one member's heads are stale (its
config, its schema or its rollout moved); the members land on consecutive stream sequences.
Every member event carries ``changeset_id`` and ``changeset_size`` (the projector uses the size
to apply a set in one transaction).

Errors name the member: ``details["member"]`` (its index) and ``details["service"]``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.js.api import PubAck

from . import nats_io
from .errors import (
    InvalidChange,
    InvalidConfig,
    LedgerError,
    UsageError,
    VersionConflict,
    WrongLastSequence,
)
from .event import Change, Event, new_event
from .ledger import Appended, Guard, Ledger
from .nats_io import EXPECTED_LAST_SUBJECT_SEQ, EXPECTED_LAST_SUBJECT_SEQ_SUBJECT, MSG_ID
from .retry import within_deadline
from .schema import validate as validate_schema

__all__ = ["Member", "Decided", "CommittedSet", "MAX_MEMBERS", "member_event_id", "decide", "commit"]

MAX_MEMBERS = 1000  # JetStream's limit of messages in one atomic batch
BATCH_ID, BATCH_SEQ, BATCH_COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"
_NAMESPACE = uuid.UUID("0b5c3f0e-6a1d-4d8e-9a43-5e7c1c0de15e")


@dataclass(frozen=True)
class Member:
    """One change of the set. ``if_match``: the version the service must be at (409 otherwise)."""

    service: str
    change: Change
    if_match: int | None = None


@dataclass(frozen=True)
class Decided:
    """A member decided against the heads read: its event and the CAS expectation (the heads'
    sequence on the service's every subject)."""

    member: Member
    event: Event
    expected_seq: int
    previous: Event | None


@dataclass(frozen=True)
class CommittedSet:
    changeset_id: str
    members: list[Appended]
    duplicate: bool = False  # a retry of a set already stored: nothing was appended


def member_event_id(changeset_id: str, index: int) -> str:
    """The event_id of member ``index``: fixed by the set's id, so a retry cannot append twice."""
    return str(uuid.uuid5(_NAMESPACE, f"{changeset_id}\x00{index}"))


def _name_member(exc: LedgerError, index: int, service: str) -> LedgerError:
    """Say which member failed (message and details) and return the same error."""
    exc.message = f"change set member {index} ({service}): {exc.message}"
    exc.args = (exc.message,)
    details = exc.details if isinstance(exc.details, dict) else {}
    exc.details = {**details, "member": index, "service": service}
    return exc


def check_members(members: Sequence[Member]) -> None:
    if not members:
        raise InvalidChange("a change set needs at least one change", details={"rule": "changeset.empty"})
    if len(members) > MAX_MEMBERS:
        raise InvalidChange(
            f"a change set holds at most {MAX_MEMBERS} changes", details={"rule": "changeset.size"}
        )
    seen: dict[str, int] = {}
    for i, m in enumerate(members):
        if m.service in seen:
            raise InvalidChange(
                f"service {m.service!r} appears twice (members {seen[m.service]} and {i}): "
                "one change per service in a set",
                details={"rule": "changeset.duplicate_service", "member": i, "service": m.service},
            )
        seen[m.service] = i


async def decide(
    ledger: Ledger,
    members: Sequence[Member],
    *,
    changeset_id: str,
    actor: str,
    reason: str,
    now: Callable[[], datetime] | None = None,
    guard: Callable[[str], Guard] | None = None,
) -> list[Decided] | CommittedSet:
    """Every member's next event (or the stored set, when this is a retry of one that landed).
    ``guard(service)``: the check each member's heads must pass (the API's rollout guard)."""
    check_members(members)
    clock = now or (lambda: datetime.now(UTC))
    all_heads = await asyncio.gather(*(ledger.heads(m.service) for m in members))
    first = all_heads[0].config
    if first is not None and first[1].event_id == member_event_id(changeset_id, 0):
        return await _stored(ledger, members, changeset_id, first[0])
    decided: list[Decided] = []
    instant = clock()
    for i, (m, heads) in enumerate(zip(members, all_heads, strict=True)):
        previous = heads.last_config
        schema = heads.schema_in_force
        try:
            current = previous.version if previous else 0
            if m.if_match is not None and m.if_match != current:
                raise VersionConflict(m.service, m.if_match, current)
            if guard is not None:
                guard(m.service)(heads)
            target = await ledger._rollback_target(m.service, m.change, previous)
            event = new_event(
                previous, m.service, m.change, actor=actor, reason=reason, occurred_at=instant,
                event_id=member_event_id(changeset_id, i), target=target,
                limits=ledger.settings.limits, changeset=(changeset_id, len(members)),
            )
            if schema is not None and event.config is not None:
                validate_schema(m.service, schema.version, schema.config or {}, event.config, member=i)
        except LedgerError as exc:
            raise _name_member(exc, i, m.service) from None
        decided.append(Decided(m, event, heads.seq, previous))
    return decided


async def commit(
    ledger: Ledger,
    members: Sequence[Member],
    *,
    actor: str,
    reason: str,
    changeset_id: str | None = None,
    max_attempts: int = 32,
    now: Callable[[], datetime] | None = None,
    guard: Callable[[str], Guard] | None = None,
) -> CommittedSet:
    """Store every member or none. Raises VersionConflict / InvalidConfig / InvalidChange naming
    the member (nothing stored), Unavailable, or StoreTimeout (outcome unknown: retry with the
    same ``changeset_id``)."""
    changeset_id = changeset_id or str(uuid.uuid4())
    try:
        uuid.UUID(changeset_id)
    except ValueError:
        raise UsageError("changeset_id must be a UUID", details={"rule": "changeset.id"}) from None
    for attempt in range(max_attempts):
        decided = await decide(ledger, members, changeset_id=changeset_id, actor=actor, reason=reason, now=now,
                               guard=guard)
        if isinstance(decided, CommittedSet):
            return decided
        stored = await _publish(ledger, decided, f"{changeset_id}.{attempt}")
        if stored is not None:
            return CommittedSet(changeset_id, stored, duplicate=stored[0].duplicate)
        if attempt >= 3:  # contention: another writer keeps moving one of the services
            await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))
    raise LedgerError(f"gave up committing change set {changeset_id} after {max_attempts} conflicting attempts")


async def _publish(ledger: Ledger, decided: list[Decided], batch_id: str) -> list[Appended] | None:
    """One atomic batch; the stored members, or None when a member's subject moved (re-decide)."""
    bodies = [d.event.to_bytes() for d in decided]
    for d, body in zip(decided, bodies, strict=True):
        if len(body) > 1024 * 1024:
            raise _name_member(
                InvalidConfig("document.size", "event is larger than the stream's 1 MiB message limit"),
                decided.index(d), d.member.service,
            )
    n, js, s = len(decided), ledger.js, ledger.settings
    tries = 0

    async def send(timeout: float) -> PubAck:
        # A new batch id per try (the server keeps no half batch); the same msg-ids and
        # expectations, so a try after one that landed is refused as a wrong last sequence.
        nonlocal tries
        tries += 1
        try:
            for i, (d, body) in enumerate(zip(decided, bodies, strict=True), start=1):
                headers = {
                    BATCH_ID: f"{batch_id}.{tries}",
                    BATCH_SEQ: str(i),
                    MSG_ID: d.event.event_id,
                    EXPECTED_LAST_SUBJECT_SEQ: str(d.expected_seq),
                    EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: s.family_filter(d.member.service),
                }
                subject = ledger.subject(d.member.service)
                if i < n:
                    await ledger.nc.publish(subject, body, headers=headers)
                else:
                    headers[BATCH_COMMIT] = "1"
                    return await js.publish(subject, body, stream=s.stream, headers=headers, timeout=timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise nats_io.translate(exc, "commit change set") from None
        raise AssertionError("a change set has at least one member")

    try:
        ack = await within_deadline(send, what="commit change set", ambiguous=True,
                                    deadline_s=s.write_deadline, request_timeout=s.request_timeout)
    except WrongLastSequence:
        return await _resolve(ledger, decided)
    first_seq = ack.seq - n + 1
    return [Appended(d.event, first_seq + i) for i, d in enumerate(decided)]


async def _resolve(ledger: Ledger, decided: list[Decided]) -> list[Appended] | None:
    """After a conflict or a timeout: is the set stored (ours, from an earlier try)? Atomic, so
    the first member tells for all."""
    d = decided[0]
    msg = await nats_io.direct_next(ledger.nc, ledger.settings.stream, ledger.subject(d.member.service),
                                    d.expected_seq + 1)
    if msg is None or msg.msg_id != d.event.event_id:
        return None
    stored = await _stored(ledger, [x.member for x in decided], d.event.changeset_id or "", msg.seq)
    return stored.members


async def _stored(ledger: Ledger, members: Sequence[Member], changeset_id: str, first_seq: int) -> CommittedSet:
    """Read back a stored set: an atomic batch sits on consecutive sequences from ``first_seq``."""
    found: list[Appended] = []
    for i, m in enumerate(members):
        seq = first_seq + i
        msg = await nats_io.direct_next(ledger.nc, ledger.settings.stream, ledger.subject(m.service), seq)
        if msg is None or msg.seq != seq or msg.msg_id != member_event_id(changeset_id, i):
            raise LedgerError(f"change set {changeset_id} is stored only in part at member {i}: "
                              "this cannot happen with an atomic batch; verify the stream")
        found.append(Appended(Event.from_bytes(msg.data), msg.seq, duplicate=True))
    return CommittedSet(changeset_id, found, duplicate=True)
