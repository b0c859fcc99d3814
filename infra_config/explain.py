"""Why a key has its value: the winning source and the values it overrode.

Pure: built from a :class:`~.merge.Merged` result. Every value in an :class:`Explanation`
is already redacted, so its ``repr`` and ``str`` are safe to log or print.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import KeyNotFoundError
from .merge import Contribution, Merged
from .redact import redact
from .source import KeyPath, Source

__all__ = ["Explanation", "Overridden", "explain", "format_key"]


@dataclass(frozen=True)
class Overridden:
    """A value a higher-priority layer replaced (redacted)."""

    source: Source
    value: Any

    def __str__(self) -> str:
        return f"{self.source} = {_short(self.value)}"


@dataclass(frozen=True)
class Explanation:
    """The answer to "where does ``key`` come from?".

    ``source`` is the winning layer (file and line, or variable). ``overridden`` holds the
    values it replaced, newest first. For a mapping, ``merged_from`` lists every source whose
    keys were merged into it, lowest priority first.
    """

    key: str
    value: Any
    source: Source
    overridden: tuple[Overridden, ...] = ()
    merged_from: tuple[Source, ...] = ()

    def __str__(self) -> str:
        if isinstance(self.value, Mapping):
            lines = [f"{self.key} (mapping with {len(self.value)} keys)"]
        else:
            lines = [f"{self.key} = {_short(self.value)}"]
        lines.append(f"  set by      {self.source}")
        if len(self.merged_from) > 1:
            lines.append("  merged from " + ", ".join(s.location for s in self.merged_from))
        for i, old in enumerate(self.overridden):
            lines.append(("  overrides   " if i == 0 else "              ") + str(old))
        return "\n".join(lines)


def format_key(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)


def explain(
    merged: Merged,
    data: Mapping[str, Any],
    path: KeyPath,
    secret_paths: Collection[KeyPath] = (),
) -> Explanation:
    """Explain the value at ``path`` in ``data`` (the validated form of ``merged.data``)."""
    key = format_key(path)
    value = _lookup(data, path, key)
    keys_end = next((i for i, part in enumerate(path) if isinstance(part, int)), len(path))
    key_path = path[:keys_end]
    entries = merged.history.get(key_path, ())
    if not entries:
        raise KeyNotFoundError(key, "no recorded source")
    shown = redact(value, path=path, secret_paths=secret_paths)
    if key_path != path:  # inside a list: the list's source is the element's source
        return Explanation(key, shown, entries[-1].source)
    if isinstance(value, Mapping):
        last_replaced = max(
            (i for i, entry in enumerate(entries) if not entry.is_mapping), default=-1
        )
        contributors = entries[last_replaced + 1 :]
        return Explanation(
            key,
            shown,
            contributors[-1].source,
            _overridden(entries[: last_replaced + 1], key_path),
            tuple(entry.source for entry in contributors),
        )
    return Explanation(key, shown, entries[-1].source, _overridden(entries[:-1], key_path))


def _overridden(entries: tuple[Contribution, ...], path: KeyPath) -> tuple[Overridden, ...]:
    return tuple(
        Overridden(
            entry.source,
            redact(entry.value, path=path, secret_paths=entry.layer.interpolated),
        )
        for entry in reversed(entries)
    )


def _lookup(data: Any, path: KeyPath, key: str) -> Any:
    level = data
    for part in path:
        if isinstance(level, Mapping) and part in level:
            level = level[part]
        elif isinstance(level, list) and isinstance(part, int) and 0 <= part < len(level):
            level = level[part]
        else:
            raise KeyNotFoundError(key)
    return level


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
