"""Where a value comes from: :class:`Source` (one place) and :class:`Layer` (one input).

A *layer* is one input to the merge — a file or the set of ``INFRA__*`` environment
variables — with a priority, its parsed data, and the source of every key path in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KeyPath", "Layer", "Source"]

#: A path into the configuration: mapping keys (str) and, inside lists, indices (int).
KeyPath = tuple[str | int, ...]

_LAYER_LABELS = {
    "default": "default file",
    "infrastructure": "infrastructure file",
    "service": "service file",
    "environment": "environment file",
    "env": "environment variable",
    "defaults": "built-in default",
    "explicit": "given explicitly",
}


@dataclass(frozen=True)
class Source:
    """One place a value can come from: ``file`` + ``line``, or an environment ``variable``."""

    layer: str
    priority: int
    file: str | None = None
    line: int | None = None
    variable: str | None = None

    @property
    def location(self) -> str:
        """``config/x.yaml:12``, ``config/x.yaml`` or ``$INFRA__A__B``."""
        if self.variable is not None:
            return f"${self.variable}"
        if self.file is not None:
            return f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"<{self.layer}>"

    @property
    def label(self) -> str:
        return _LAYER_LABELS.get(self.layer, self.layer)

    def __str__(self) -> str:
        return f"{self.location} ({self.label}, priority {self.priority})"


@dataclass(frozen=True, eq=False)
class Layer:
    """One merge input: ``data`` plus the :class:`Source` of each key path in it.

    ``interpolated`` lists the paths whose string values took text from the environment
    through ``${VAR}``; they are treated as secrets.
    """

    name: str
    priority: int
    data: Mapping[str, Any]
    origin: Source
    origins: Mapping[KeyPath, Source] = field(default_factory=dict)
    interpolated: frozenset[KeyPath] = frozenset()

    def source_at(self, path: KeyPath) -> Source:
        """The most specific known source for ``path`` (its own, an ancestor's, or the layer's)."""
        for end in range(len(path), 0, -1):
            found = self.origins.get(path[:end])
            if found is not None:
                return found
        return self.origin
