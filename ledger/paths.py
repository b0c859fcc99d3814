"""Key paths inside a document, as every rule reports them: ``operational.batch_size``,
``hosts[0].url`` (never the value: it may be a secret)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["join_path"]


def join_path(parts: Iterable[str | int]) -> str:
    """``["a", 0, "b"]`` -> ``a[0].b``: object keys joined with dots, list indexes in brackets."""
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}" if path else part
    return path
