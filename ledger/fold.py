"""Fold a service's events into its state, verifying the chain as it goes (pure).

The checks here are the ones the projector and the audit reader run: versions contiguous from 1,
``prev_hash`` equal to the previous ``hash``, every hash recomputing, and each event's ``config``
equal to applying its ``change`` to the previous config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import LedgerError, ProjectionDiverged
from .event import Event, EventKind, apply, change_from_event

__all__ = ["ChainState", "check_next", "fold", "ChainReport", "verify_chain"]


@dataclass(frozen=True)
class ChainState:
    """The last verified event of one service (what the next one must chain onto)."""

    version: int
    hash: str


def check_next(state: ChainState | None, event: Event, *, seq: int | None = None) -> ChainState:
    """Verify that ``event`` follows ``state``; return the new state or raise ProjectionDiverged."""
    expected_version = state.version + 1 if state else 1
    if event.version != expected_version:
        raise ProjectionDiverged(
            f"version gap for {event.service!r}: expected {expected_version}, got {event.version}",
            seq=seq,
            service=event.service,
        )
    expected_prev = state.hash if state else ""
    if event.prev_hash != expected_prev:
        raise ProjectionDiverged(
            f"broken hash chain for {event.service!r} at version {event.version}: prev_hash does "
            "not match the previous event's hash",
            seq=seq,
            service=event.service,
        )
    if not event.hash_ok():
        raise ProjectionDiverged(
            f"hash of {event.service!r} version {event.version} does not recompute (event altered)",
            seq=seq,
            service=event.service,
        )
    return ChainState(event.version, event.hash)


def fold(events: Iterable[Event]) -> dict[str, Event]:
    """Latest event per service after verifying every chain and every transition."""
    latest: dict[str, Event] = {}
    by_version: dict[tuple[str, int], Event] = {}
    for event in events:
        prev = latest.get(event.service)
        check_next(ChainState(prev.version, prev.hash) if prev else None, event)
        target = None
        if event.kind is EventKind.ROLLED_BACK:
            target = by_version.get((event.service, int(event.change["to_version"])))
        try:
            expected = apply(prev.config if prev else None, change_from_event(event), target)
        except LedgerError as exc:
            raise ProjectionDiverged(
                f"{event.service!r} version {event.version}: change cannot apply: {exc}",
                service=event.service,
            ) from None
        if expected != event.config:
            raise ProjectionDiverged(
                f"{event.service!r} version {event.version}: config is not the result of its change",
                service=event.service,
            )
        latest[event.service] = event
        by_version[(event.service, event.version)] = event
    return latest


@dataclass
class ChainReport:
    """Result of verifying one or more services' chains (used by auditors)."""

    services: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(events: Iterable[Event]) -> ChainReport:
    """Check every chain; collect every problem instead of stopping at the first."""
    report = ChainReport()
    states: dict[str, ChainState] = {}
    broken: set[str] = set()
    for event in events:
        report.events += 1
        if event.service in broken:
            continue
        try:
            states[event.service] = check_next(states.get(event.service), event)
        except ProjectionDiverged as exc:
            report.problems.append(exc.message)
            broken.add(event.service)
    report.services = len(states.keys() | broken)
    return report
