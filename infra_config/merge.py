"""Deep merge of layers, lowest priority first, recording who set what.

Pure. Rules: mappings merge key by key; anything else (scalars, lists, ``null``) replaces
what was there — lists are never concatenated. Layers are applied in priority order; layers
of equal priority keep the order they were given in (later wins).

Provenance: for every mapping-key path, :attr:`Merged.history` lists each
:class:`Contribution` made to it, oldest first. When a value replaces a mapping, the
history of the keys below it is dropped, since those values are gone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .source import KeyPath, Layer, Source

__all__ = ["Contribution", "Merged", "merge_layers"]


@dataclass(frozen=True)
class Contribution:
    """``layer`` put ``value`` at a path (for a mapping, the layer's own sub-mapping)."""

    layer: Layer
    source: Source
    value: Any

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, Mapping)


@dataclass(frozen=True)
class Merged:
    """The merged data and the history of every mapping-key path in it."""

    data: dict[str, Any]
    history: Mapping[KeyPath, tuple[Contribution, ...]]
    layers: tuple[Layer, ...]

    def winner(self, path: KeyPath) -> Contribution | None:
        """The last contribution to ``path`` (or to its nearest recorded ancestor)."""
        for end in range(len(path), 0, -1):
            entries = self.history.get(path[:end])
            if entries:
                return entries[-1]
        return None


def merge_layers(layers: Sequence[Layer]) -> Merged:
    ordered = sorted(layers, key=lambda layer: layer.priority)  # stable: ties keep order
    data: dict[str, Any] = {}
    history: dict[KeyPath, list[Contribution]] = {}
    for layer in ordered:
        _apply(data, layer.data, (), layer, history)
    return Merged(
        data=data,
        history={path: tuple(entries) for path, entries in history.items()},
        layers=tuple(ordered),
    )


def _apply(
    base: dict[str, Any],
    overlay: Mapping[str, Any],
    path: KeyPath,
    layer: Layer,
    history: dict[KeyPath, list[Contribution]],
) -> None:
    for key, new in overlay.items():
        child = (*path, key)
        old = base.get(key)
        entry = Contribution(layer, layer.source_at(child), copy.deepcopy(new))
        if isinstance(new, Mapping):
            if not isinstance(old, dict):
                _drop_below(history, child)
                base[key] = {}
            history.setdefault(child, []).append(entry)
            _apply(base[key], new, child, layer, history)
        else:
            if isinstance(old, dict):
                _drop_below(history, child)
            base[key] = copy.deepcopy(new)
            history.setdefault(child, []).append(entry)


def _drop_below(history: dict[KeyPath, list[Contribution]], path: KeyPath) -> None:
    depth = len(path)
    for known in [p for p in history if len(p) > depth and p[:depth] == path]:
        del history[known]
