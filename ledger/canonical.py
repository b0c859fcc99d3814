"""Canonical JSON and hashing: the byte form every event is stored and hashed in.

Canonical = orjson with sorted keys, UTF-8, no insignificant whitespace. Callers validate
documents first (``ledger.validate``): orjson would silently write NaN as ``null``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import orjson

from .errors import InvalidConfig

__all__ = ["dumps", "loads", "parse_strict", "sha256_of", "HASH_PREFIX"]

HASH_PREFIX = "sha256:"


def dumps(value: Any) -> bytes:
    """Canonical bytes of a JSON value (sorted keys, compact, UTF-8)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidConfig("json", f"value cannot be encoded as JSON: {exc}") from None


def loads(data: bytes | str) -> Any:
    """Parse JSON produced by :func:`dumps` (trusted bytes: our own stream)."""
    return orjson.loads(data)


def sha256_of(value: Any) -> str:
    """``sha256:<hex>`` over the canonical bytes of ``value``."""
    return HASH_PREFIX + hashlib.sha256(dumps(value)).hexdigest()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidConfig("json.duplicate_key", f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise InvalidConfig("json.non_finite", f"{name} is not allowed in JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidConfig("json.non_finite", f"number {text[:40]} is out of range")
    return value


# An integer literal longer than this cannot be within +-2^53 (``validate`` enforces the exact
# bound); refusing it here also keeps Python's 4300-digit int-string limit out of reach.
MAX_INT_DIGITS = 20


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidConfig("json.int_range", f"integer of {len(text)} digits is out of range")
    return int(text)


def parse_strict(data: bytes | str) -> Any:
    """Parse untrusted JSON: duplicate keys, NaN/Infinity and malformed text raise InvalidConfig.

    The stdlib parser is used (not orjson) because it can report duplicate keys.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidConfig("json.encoding", f"body is not valid UTF-8 (byte {exc.start})") from None
    else:
        text = data
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError:
        raise InvalidConfig("json.depth", "JSON nesting is too deep") from None
    except json.JSONDecodeError as exc:
        raise InvalidConfig(
            "json.syntax", f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
