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
from .event import merge_patch

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
    """The origin tree of ``new``, given the tree of ``old``: equal subtrees keep their nodes."""
    if has_old and _same(old, new):
        return old_node
    if isinstance(new, dict) and new:
        if not (isinstance(old, dict) and isinstance(old_node, dict)):
            return {k: _merge(None, None, v, origin, False) for k, v in new.items()}
        # One pass of C-speed ``!=`` finds the changed keys; one canonical comparison of all the
        # others confirms them (``==`` calls 1, 1.0 and true equal): per key only when it fails.
        changed = [k for k, v in new.items() if k not in old or old[k] != v]
        if len(changed) < len(new):
            moved = set(changed)
            kept = [k for k in new if k not in moved]
            if dumps({k: old[k] for k in kept}) != dumps({k: new[k] for k in kept}):
                changed = [k for k, v in new.items() if k not in old or not _same(old[k], v)]
        node = {k: old_node.get(k) for k in new}
        for k in changed:
            node[k] = _merge(old_node.get(k), old.get(k), new[k], origin, k in old)
        return node
    if isinstance(new, list) and new:
        old_seq = old_node if isinstance(old, list) and isinstance(old_node, list) else []
        old_doc = old if isinstance(old, list) else []
        return [
            _merge(old_seq[i] if i < len(old_seq) else None, old_doc[i] if i < len(old_doc) else None,
                   v, origin, i < len(old_doc) and i < len(old_seq))
            for i, v in enumerate(new)
        ]
    return origin


def _merge_patched(node: dict[str, Node], old: dict[str, Any], new: dict[str, Any], patch: dict[str, Any],
                   origin: Origin) -> dict[str, Node]:
    """Like ``_merge`` after an RFC 7396 patch: only the keys the patch names can have changed."""
    if not new:  # the patch emptied the document: the empty object is the one leaf
        return origin  # type: ignore[return-value]
    out = dict(node)
    for k, p in patch.items():
        if k not in new:
            out.pop(k, None)
        elif isinstance(p, dict) and isinstance(old.get(k), dict) and isinstance(node.get(k), dict) \
                and isinstance(new[k], dict) and new[k]:
            out[k] = _merge_patched(node[k], old[k], new[k], p, origin)
        else:
            out[k] = _merge(node.get(k), old.get(k), new[k], origin, k in old)
    return out


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

    def copy(self) -> Blame:
        """An independent fold at the same version (cheap: the origin tree is never mutated)."""
        other = Blame()
        other.version, other.config, other._tree = self.version, self.config, self._tree
        return other

    def advance(self, version: int, config: dict[str, Any] | None, origin: Origin) -> None:
        """Fold the event that made ``version`` (its document ``config``; None: deleted)."""
        if version != self.version + 1:
            raise ValueError(f"blame expects version {self.version + 1}, got {version}")
        if config is None:
            self._tree = None
        else:
            self._tree = _merge(self._tree, self.config, config, origin, self.config is not None)
        self.version, self.config = version, config

    def advance_patch(self, version: int, patch: dict[str, Any], origin: Origin) -> None:
        """Fold a ``patched`` event from its merge patch alone (the projector verified that its
        document is the patch applied to the previous one): cost ~ the patch, not the document."""
        if version != self.version + 1:
            raise ValueError(f"blame expects version {self.version + 1}, got {version}")
        config = merge_patch(self.config, patch)
        if self.config is None or not isinstance(self._tree, dict):
            self.advance(version, config, origin)
            return
        self._tree = _merge_patched(self._tree, self.config, config, patch, origin)
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
