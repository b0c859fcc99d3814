"""The environment-variable layer (priority 100): ``INFRA__A__B__C=value`` sets ``a.b.c``.

Pure. The convention, in full:

- Only names starting with ``INFRA__`` count (``INFRA_CONFIG_DIR`` is not a key).
- ``__`` (double underscore) separates nesting levels; each part is lower-cased:
  ``INFRA__DATABASES__POSTGRESQL__PORT=5433`` sets ``databases.postgresql.port``.
- A part matches an existing key from the files with ``_`` standing for ``-``, because
  shells cannot export ``-``: ``INFRA__MESSAGING__NATS_1__PORT`` sets ``messaging.nats-1.port``
  when the files define ``nats-1`` (and no ``nats_1``).
- The value is read as one YAML scalar: ``5433`` → int, ``true`` → bool, ``null`` → None,
  ``[a, b]`` stays the string ``"[a, b]"``; an empty value is the empty string. Values of
  secret-named keys (``password``, ``token``...) are always kept as the exact string.
- Values are never ``${}``-interpolated. Two variables naming the same key, or one naming a
  key inside another's value, are an error naming both variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .errors import ConfigValidationError
from .redact import is_secret_key
from .source import KeyPath, Layer, Source

__all__ = ["ENV_PREFIX", "ENV_PRIORITY", "env_layer", "parse_scalar"]

ENV_PREFIX = "INFRA__"
ENV_PRIORITY = 100
_SEPARATOR = "__"


def env_layer(environ: Mapping[str, str], files: Mapping[str, Any] | None = None) -> Layer:
    """Build the layer from ``environ``; ``files`` is the merged file data (for ``_``/``-``)."""
    data: dict[str, Any] = {}
    origins: dict[KeyPath, Source] = {}
    owners: dict[KeyPath, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        source = Source("env", ENV_PRIORITY, variable=name)
        parts = name[len(ENV_PREFIX) :].split(_SEPARATOR)
        if any(not part for part in parts):
            raise ConfigValidationError(
                [(source, name, f"empty key part; write {ENV_PREFIX}SECTION__KEY__SUBKEY")]
            )
        path = _resolve(tuple(part.lower() for part in parts), files or {})
        _insert(data, path, _value(path, environ[name]), name, owners)
        for end in range(1, len(path) + 1):
            origins.setdefault(path[:end], source)
        origins[path] = source
    return Layer(
        name="env",
        priority=ENV_PRIORITY,
        data=data,
        origin=Source("env", ENV_PRIORITY),
        origins=origins,
    )


def parse_scalar(text: str) -> Any:
    """Read ``text`` the way YAML reads a plain scalar (``5433`` → 5433, ``on`` → True)."""
    if text == "":
        return ""
    loader = yaml.SafeLoader("")
    try:
        tag = loader.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        return loader.construct_object(yaml.ScalarNode(tag, text), deep=True)
    except (yaml.YAMLError, ValueError):
        return text  # e.g. an impossible date such as 2025-13-45: keep the text
    finally:
        loader.dispose()


def _value(path: tuple[str, ...], raw: str) -> Any:
    return raw if is_secret_key(path[-1]) else parse_scalar(raw)


def _resolve(parts: tuple[str, ...], files: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    level: Any = files
    for part in parts:
        key = part
        if isinstance(level, Mapping) and part not in level:
            dashed = part.replace("_", "-")
            if dashed in level:
                key = dashed
        out.append(key)
        level = level.get(key) if isinstance(level, Mapping) else None
    return tuple(out)


def _insert(
    data: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    name: str,
    owners: dict[KeyPath, str],
) -> None:
    level = data
    for end in range(1, len(path)):
        prefix = path[:end]
        child = level.setdefault(path[end - 1], {})
        if not isinstance(child, dict):
            _conflict(name, owners[prefix], path)
        owners.setdefault(prefix, name)
        level = child
    if path in owners:
        _conflict(name, owners[path], path)
    owners[path] = name
    level[path[-1]] = value


def _conflict(name: str, other: str, path: tuple[str, ...]) -> None:
    raise ConfigValidationError(
        [
            (
                Source("env", ENV_PRIORITY, variable=name),
                ".".join(path),
                f"conflicts with ${other}; each key may be set by one variable only",
            )
        ]
    )
