"""Hide secrets before anything is shown: ``repr``, logs, :meth:`explain`, the CLI.

Pure. A value is secret when its key looks like a credential (``password``, ``secret``,
``token``, ``api_key``, ``private_key``... in any case, ``-`` or ``_``) or when its path is
in ``secret_paths`` (values interpolated from the environment). Secret values become
``"***"``; ``None`` stays ``None`` since it reveals nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from .source import KeyPath

__all__ = ["MASK", "is_secret_key", "is_secret_path", "redact"]

MASK = "***"

_SECRET_KEY = re.compile(
    r"(^|_)pass(_|$)|passw(or)?d|passphrase|secret|token|api_?key|private_?key|credential",
)


def is_secret_key(key: object) -> bool:
    """True for keys such as ``password``, ``db-password``, ``API_KEY``, ``client_secret``."""
    if not isinstance(key, str):
        return False
    return _SECRET_KEY.search(key.lower().replace("-", "_")) is not None


def is_secret_path(path: KeyPath, secret_paths: Collection[KeyPath] = ()) -> bool:
    """True when any key on ``path`` is secret-named or ``path`` (or a prefix) is listed."""
    if any(is_secret_key(part) for part in path):
        return True
    return any(path[:end] in secret_paths for end in range(len(path), 0, -1))


def redact(value: Any, *, path: KeyPath = (), secret_paths: Collection[KeyPath] = ()) -> Any:
    """A copy of ``value`` (found at ``path``) with every secret replaced by :data:`MASK`."""
    if value is not None and is_secret_path(path, secret_paths):
        return MASK
    return _redact_below(value, path, secret_paths)


def _redact_below(value: Any, path: KeyPath, secret_paths: Collection[KeyPath]) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            child = (*path, key)
            secret = is_secret_key(key) or child in secret_paths
            out[key] = (
                MASK if secret and item is not None else _redact_below(item, child, secret_paths)
            )
        return out
    if isinstance(value, list):
        return [
            MASK
            if (*path, i) in secret_paths and item is not None
            else _redact_below(item, (*path, i), secret_paths)
            for i, item in enumerate(value)
        ]
    return value
