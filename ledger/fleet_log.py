"""The fleet on JetStream: fleet events (CAS-appended, like config events) and acknowledgements.

``FleetLog.append`` publishes the next event of ``config.rollouts.<service>`` with
``Nats-Expected-Last-Subject-Sequence`` = the sequence of the state it was decided on: two
controllers (or an admin and the controller) deciding on the same state cannot both succeed;
the loser gets ``FleetConflict("rollout.concurrent")`` and decides again on the new state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS

from . import nats_io
from .acks import Ack
from .errors import FleetConflict, InvalidConfig, WrongLastSequence
from .fleet_events import FleetEvent, FleetKind, FleetState, next_fleet_event
from .nats_io import EXPECTED_LAST_SUBJECT_SEQ, MSG_ID
from .retry import within_deadline
from .settings import LedgerSettings
from .validate import validate_service_name
from .watch import replay

__all__ = ["FleetLog", "FleetHead"]



@dataclass(frozen=True)
class FleetHead:
    """The last fleet event of a service and its stream sequence (0/None: nothing yet)."""

    seq: int
    event: FleetEvent | None

    @property
    def state(self) -> FleetState:
        return self.event.state if self.event else FleetState()


class FleetLog:
    def __init__(self, nc: NATS, settings: LedgerSettings) -> None:
        self.nc = nc
        self.settings = settings
        self.js = nc.jetstream(timeout=settings.request_timeout)

    async def head(self, service: str) -> FleetHead:
        subject = self.settings.rollout_subject(validate_service_name(service))

        async def read(timeout: float) -> Any:
            return await nats_io.direct_last(self.nc, self.settings.stream, subject, timeout=timeout)

        # Every write reads this (the rollout guard): ride through an election like the ledger's reads.
        msg = await within_deadline(read, what=f"fleet head of {service}", deadline_s=self.settings.write_deadline,
                                    request_timeout=self.settings.request_timeout)
        return FleetHead(msg.seq, FleetEvent.from_bytes(msg.data)) if msg else FleetHead(0, None)

    async def heads(self) -> dict[str, FleetHead]:
        """Every service that ever had a fleet event, with its head."""
        msgs = await nats_io.direct_multi_last(
            self.nc, self.settings.stream, [self.settings.rollout_wildcard], timeout=self.settings.request_timeout
        )
        out: dict[str, FleetHead] = {}
        for msg in msgs:
            event = FleetEvent.from_bytes(msg.data)
            out[event.service] = FleetHead(msg.seq, event)
        return out

    async def append(
        self,
        head: FleetHead,
        service: str,
        kind: FleetKind,
        ref: str,
        state: FleetState,
        *,
        actor: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> tuple[int, FleetEvent]:
        """Append the step decided on ``head``; FleetConflict if the service's fleet moved since."""
        event = next_fleet_event(
            head.event, service, kind, ref, state, actor=actor, reason=reason,
            occurred_at=(now or (lambda: datetime.now(UTC)))(), detail=detail,
        )
        data = event.to_bytes()
        if len(data) > 1024 * 1024:
            raise InvalidConfig("document.size", "fleet event is larger than the stream's 1 MiB message limit")
        subject = self.settings.rollout_subject(service)

        async def publish(timeout: float) -> Any:
            # Same msg-id and expectation on every try (ledger.retry): never a duplicate.
            headers = {MSG_ID: event.event_id, EXPECTED_LAST_SUBJECT_SEQ: str(head.seq)}
            with nats_io.nats_errors("fleet append"):
                return await self.js.publish(subject, data, stream=self.settings.stream, headers=headers,
                                             timeout=timeout)

        try:
            ack = await within_deadline(publish, what=f"fleet append to {subject}", ambiguous=True,
                                        deadline_s=self.settings.write_deadline,
                                        request_timeout=self.settings.request_timeout)
        except WrongLastSequence:
            found = await nats_io.direct_next(self.nc, self.settings.stream, subject, head.seq + 1)
            if found is not None and found.msg_id == event.event_id:  # our own earlier try landed
                return found.seq, event
            raise FleetConflict(
                "rollout.concurrent", f"the fleet state of {service!r} changed meanwhile; decide again"
            ) from None
        return ack.seq, event

    async def history(self, service: str) -> list[FleetEvent]:
        head = await self.head(service)
        if head.event is None:
            return []
        subject = self.settings.rollout_subject(service)
        return [
            FleetEvent.from_bytes(m.data)
            async for m in replay(self.nc, self.settings.stream, subject, stop_seq=head.seq)
        ]

    # --- acknowledgements ----------------------------------------------------------------------

    async def acks(self, service: str | None = None) -> list[Ack]:
        """The latest acknowledgement of every instance (of ``service``, or of every service) still
        in the bounded stream."""
        wildcard = self.settings.acks_wildcard(validate_service_name(service) if service is not None else None)
        msgs = await nats_io.direct_multi_last(
            self.nc, self.settings.acks_stream, [wildcard], timeout=self.settings.request_timeout
        )
        out = []
        for msg in msgs:
            try:
                out.append(Ack.model_validate_json(msg.data))
            except ValueError:
                continue  # not ours to judge; a malformed ack never reaches the stream via the API
        return out

    async def publish_ack(self, ack: Ack) -> None:
        with nats_io.nats_errors("ack"):
            await self.js.publish(
                self.settings.ack_subject(ack.service, ack.instance), ack.model_dump_json().encode(),
                stream=self.settings.acks_stream, timeout=self.settings.request_timeout,
            )


async def candidate_of(ledger: Any, service: str, change: Any) -> tuple[int, dict[str, Any]]:
    """(base version, the document ``change`` would give): validated now, appended later."""
    import uuid

    from .event import new_event

    base = await ledger.current(service)
    event = new_event(
        base, service, change, actor="rollout", reason="", occurred_at=datetime.now(UTC),
        event_id=str(uuid.uuid4()), limits=ledger.settings.limits,
    )
    assert event.config is not None  # replace/patch never delete
    return (base.version if base else 0), event.config
