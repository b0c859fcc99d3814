"""Verify one stream message against the chain state of its service (pure).

A message must be a valid event (``Event.from_bytes``), sit on its own service's subject, and
chain onto the service's previous event (``ledger.fold.check_next``: version + 1, prev_hash =
previous hash, the hash recomputes). Anything else raises ``ProjectionDiverged`` with the stream
sequence: the projector's fail-stop.
"""

from __future__ import annotations

from collections.abc import Mapping

from ledger.errors import LedgerError, ProjectionDiverged
from ledger.event import Event
from ledger.fold import ChainState, check_next

__all__ = ["verify_message", "service_of_subject"]


def service_of_subject(subject: str, prefix: str) -> str | None:
    """``config.events.billing`` -> ``billing`` (None when outside ``prefix``)."""
    head = prefix + "."
    if not subject.startswith(head) or len(subject) == len(head):
        return None
    return subject[len(head) :]


def verify_message(
    chains: Mapping[str, ChainState], prefix: str, subject: str, seq: int, data: bytes
) -> tuple[Event, ChainState]:
    """The event in ``data`` and its service's new chain state, or ProjectionDiverged."""
    service = service_of_subject(subject, prefix)
    if service is None:
        raise ProjectionDiverged(f"message on subject {subject!r} is outside {prefix}.>", seq=seq)
    try:
        event = Event.from_bytes(data)
    except (LedgerError, ValueError, TypeError) as exc:
        detail = exc.message if isinstance(exc, LedgerError) else str(exc)
        raise ProjectionDiverged(
            f"message on {subject} is not a valid event ({detail})", seq=seq, service=service
        ) from None
    if event.service != service:
        raise ProjectionDiverged(
            f"event of service {event.service!r} was published on the subject of {service!r} ({subject})",
            seq=seq,
            service=service,
        )
    return event, check_next(chains.get(service), event, seq=seq)
