"""Blame: for every leaf of a service's document, the event that last set its current value (pure).

A *leaf* is a scalar, an empty object or an empty array, addressed by its JSON Pointer (array
elements by index). A leaf's origin is the oldest event of the unbroken run of versions, ending
at the latest, in which the leaf held its current value (same JSON type and value); a deletion
breaks every run. A write that leaves a value as it was (a replace with the same value, a rollback
to an equal document) does not take the blame.

How it stays fast on long histories: the fold keeps a tree of origins parallel to the document
and, per event, walks only the subtrees that differ (``==`` on dicts is C code; equal subtrees
are kept by reference, with their origins, without visiting their leaves). A patch of one key
in a large document costs about the depth of that key, not the size of the document. ``Blame``
can be advanced event by event, so a reader that keeps one (the API does, per service) folds only
the events it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .canonical import dumps

__all__ = ["Origin", "Blame", "blame", "leaves"]


@dataclass(frozen=True)
class Origin:
    """Who set a value: one event's identity, instant, actor, reason and change set."""

    version: int
    occurred_at: datetime
    stored_at: datetime | None
    actor: str
    reason: str
    changeset_id: str | None = None


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1, 1.0 and true are three different values."""
    if a is b:
        return True
    if a != b:
        return False
    return dumps(a) == dumps(b)


# A node of the origin tree: an Origin (leaf) or a dict/list of child nodes mirroring the document.
Node = Any


def _merge(old_node: Node, old: Any, new: Any, origin: Origin, has_old: bool) -> Node:
    if has_old and _same(old, new):
        return old_node
    if isinstance(new, dict) and new:
        old_map = old_node if isinstance(old, dict) and isinstance(old_node, dict) else {}
        old_doc = old if isinstance(old, dict) else {}
        return {
            k: _merge(old_map.get(k), old_doc.get(k), v, origin, k in old_doc and k in old_map)
            for k, v in new.items()
        }
    if isinstance(new, list) and new:
        old_seq = old_node if isinstance(old, list) and isinstance(old_node, list) else []
        old_doc = old if isinstance(old, list) else []
        return [
            _merge(old_seq[i] if i < len(old_seq) else None, old_doc[i] if i < len(old_doc) else None,
                   v, origin, i < len(old_doc) and i < len(old_seq))
            for i, v in enumerate(new)
        ]
    return origin


def _flatten(node: Node, doc: Any, path: str) -> Iterator[tuple[str, Origin]]:
    if isinstance(doc, dict) and doc:
        for k, v in doc.items():
            yield from _flatten(node[k], v, f"{path}/{_esc(k)}")
    elif isinstance(doc, list) and doc:
        for i, v in enumerate(doc):
            yield from _flatten(node[i], v, f"{path}/{i}")
    else:
        yield path, node


def leaves(doc: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (JSON Pointer, value) leaf of ``doc``."""
    if isinstance(doc, dict) and doc:
        for k, v in doc.items():
            yield from leaves(v, f"{path}/{_esc(k)}")
    elif isinstance(doc, list) and doc:
        for i, v in enumerate(doc):
            yield from leaves(v, f"{path}/{i}")
    else:
        yield path, doc


class Blame:
    """The blame of one service's document, advanced one event at a time (in version order)."""

    __slots__ = ("version", "config", "_tree")

    def __init__(self) -> None:
        self.version = 0
        self.config: dict[str, Any] | None = None
        self._tree: Node = None

    def advance(self, version: int, config: dict[str, Any] | None, origin: Origin) -> None:
        """Fold the event that made ``version`` (its document ``config``; None: deleted)."""
        if version != self.version + 1:
            raise ValueError(f"blame expects version {self.version + 1}, got {version}")
        if config is None:
            self._tree = None
        else:
            self._tree = _merge(self._tree, self.config, config, origin, self.config is not None)
        self.version, self.config = version, config

    def lines(self) -> dict[str, Origin]:
        """JSON Pointer of every leaf of the current document -> its origin ({} when deleted)."""
        if self.config is None:
            return {}
        return dict(_flatten(self._tree, self.config, ""))


def blame(events: Iterable[tuple[int, dict[str, Any] | None, Origin]]) -> Blame:
    """Fold (version, config, origin) triples, oldest first."""
    state = Blame()
    for version, config, origin in events:
        state.advance(version, config, origin)
    return state
