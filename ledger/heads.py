"""``Heads``: what a write decides on — the newest message of each of a service's subject
families (its config events, its schema, its rollouts), all as of one stream sequence.

A write is published with the CAS on the whole family: ``Nats-Expected-Last-Subject-Sequence``
= ``Heads.seq`` with ``Nats-Expected-Last-Subject-Sequence-Subject: config.*.<service>``. If
anything of the service moved since the heads were read (a config write from another process, a
schema set, a rollout step), the stream refuses the write; the writer reads the heads again and
decides again. So a ``Ledger`` keeps the heads in memory between writes: a hot write costs one
round trip (the publish), and still no write is ever decided on a stale schema or rollout state.

Pure: built from stored messages (one ``multi_last`` direct get, which the server answers from
one consistent snapshot) or from the previous heads and the event just appended on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from .event import Event
from .nats_io import StoredMsg
from .settings import LedgerSettings

__all__ = ["Family", "Heads"]


class Family(Enum):
    CONFIG = "config"
    SCHEMA = "schema"


@dataclass(frozen=True)
class Heads:
    """The service's families as of stream sequence ``seq`` (0: nothing stored yet)."""

    seq: int
    config: tuple[int, Event] | None = None  # the last config event and its sequence
    schema: tuple[int, Event] | None = None  # the last schema event (a removal included)
    rollout: StoredMsg | None = None  # the last fleet event (parsed by the fleet's guard)

    @classmethod
    def of(cls, msgs: Iterable[StoredMsg], settings: LedgerSettings, service: str) -> Heads:
        """From the last message of each subject matching ``settings.family_filter(service)``."""
        heads = cls(0)
        schema, rollout = f"{settings.schema_prefix}.{service}", settings.rollout_subject(service)
        for msg in msgs:
            if msg.subject == schema:
                heads = replace(heads, schema=(msg.seq, Event.from_bytes(msg.data)))
            elif msg.subject == rollout:
                heads = replace(heads, rollout=msg)
            else:  # the third family: the config events (a schema ledger's settings name its own)
                heads = replace(heads, config=(msg.seq, Event.from_bytes(msg.data)))
            heads = replace(heads, seq=max(heads.seq, msg.seq))
        return heads

    def own(self, family: Family) -> tuple[int, Event] | None:
        return self.config if family is Family.CONFIG else self.schema

    def appended(self, family: Family, seq: int, event: Event) -> Heads:
        """The heads after ``event`` was stored at ``seq`` with the CAS on these heads."""
        if family is Family.CONFIG:
            return replace(self, seq=seq, config=(seq, event))
        return replace(self, seq=seq, schema=(seq, event))

    @property
    def schema_in_force(self) -> Event | None:
        """The schema event now in force (None: none, or removed)."""
        if self.schema is None or self.schema[1].config is None:
            return None
        return self.schema[1]

    @property
    def last_config(self) -> Event | None:
        """The last config event (a deletion included), or None before the first."""
        return self.config[1] if self.config else None

    @property
    def current_config(self) -> Event | None:
        """The config event now in force (None: none, or deleted)."""
        last = self.last_config
        return last if last is not None and last.config is not None else None
