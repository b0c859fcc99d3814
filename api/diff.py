"""Key-level diff of two config documents (pure: no I/O, no clock, inputs untouched).

Paths are JSON Pointers (RFC 6901): ``/operational/batch_size``; a key containing ``/`` or ``~``
is escaped (``~1``, ``~0``). Objects are compared key by key, recursively; anything else (lists,
scalars) is compared as a whole value. A missing document (never existed, or deleted) diffs as
an empty object.

    >>> diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}, "d": []})
    {'added': [{'path': '/d', 'value': []}], 'removed': [{'path': '/a/c', 'value': 2}], 'changed': [{'path': '/a/b', 'from': 1, 'to': 3}]}
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["diff", "apply_diff", "pointer", "is_empty"]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def pointer(parts: list[str]) -> str:
    return "".join("/" + _escape(p) for p in parts)


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; JSON documents tell them apart.
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """``{"added": [...], "removed": [...], "changed": [...]}``, each list sorted by path."""
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []

    def walk(a: dict[str, Any], b: dict[str, Any], parts: list[str]) -> None:
        for key in set(a) | set(b):
            here = [*parts, key]
            if key not in b:
                removed.append({"path": pointer(here), "value": a[key]})
            elif key not in a:
                added.append({"path": pointer(here), "value": b[key]})
            elif isinstance(a[key], dict) and isinstance(b[key], dict):
                walk(a[key], b[key], here)
            elif not _same(a[key], b[key]):
                changed.append({"path": pointer(here), "from": a[key], "to": b[key]})

    walk(old or {}, new or {}, [])
    for items in (added, removed, changed):
        items.sort(key=lambda item: item["path"])
    return {"added": added, "removed": removed, "changed": changed}


def is_empty(d: dict[str, list[dict[str, Any]]]) -> bool:
    return not (d["added"] or d["removed"] or d["changed"])


def _split(path: str) -> list[str]:
    return [_unescape(p) for p in path.split("/")[1:]]


def apply_diff(doc: dict[str, Any] | None, d: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Apply a diff to ``doc`` (a copy): ``apply_diff(a, diff(a, b)) == b`` for any documents."""
    out: dict[str, Any] = copy.deepcopy(doc) if doc else {}

    def parent(parts: list[str]) -> dict[str, Any]:
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        return node

    for item in d["removed"]:
        parts = _split(item["path"])
        parent(parts).pop(parts[-1], None)
    for item in d["changed"]:
        parts = _split(item["path"])
        parent(parts)[parts[-1]] = copy.deepcopy(item["to"])
    for item in d["added"]:
        parts = _split(item["path"])
        parent(parts)[parts[-1]] = copy.deepcopy(item["value"])
    return out
