"""Validation rules every document passes before it may be appended (pure, no I/O).

An accepted event must never become a poison message: anything PostgreSQL ``jsonb`` or a
JavaScript client could not round-trip is rejected here, with a rule id and a key path, and
never with the offending value echoed (it may be a secret).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .canonical import dumps
from .errors import InvalidConfig, InvalidServiceName
from .paths import join_path
from .secrets import find_secret

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "SERVICE_NAME_RE",
    "validate_service_name",
    "validate_document",
    "validate_json_value",
    "find_secret",
]

SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_SAFE_INT = 2**53


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_depth: int = 32
    secrets_policy: bool = True


DEFAULT_LIMITS = Limits()

def validate_service_name(name: Any) -> str:
    if not isinstance(name, str) or not SERVICE_NAME_RE.match(name):
        raise InvalidServiceName(str(name))
    return name


class _Refused(Exception):
    """A refusal on its way up the document: each level adds its key, the top joins them (so a
    clean document, the usual case, never builds a path)."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule, self.message = rule, message
        self.reversed_path: list[str | int] = []


def _check_string(value: str, what: str) -> None:
    if "\x00" in value:
        raise _Refused("json.nul_char", f"{what} contains a \\u0000 character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("json.lone_surrogate", f"{what} contains a lone surrogate") from None


def _check(value: Any, max_depth: int, depth: int) -> None:
    if isinstance(value, dict):
        depth += 1
        if depth > max_depth:
            raise _Refused("json.depth", f"nesting deeper than {max_depth} levels")
        for key, child in value.items():
            if not isinstance(key, str):
                raise _Refused("json.key_type", "object keys must be strings")
            _check_string(key, "a key")
            try:
                _check(child, max_depth, depth)
            except _Refused as refused:
                refused.reversed_path.append(key)
                raise
    elif isinstance(value, list):
        depth += 1
        if depth > max_depth:
            raise _Refused("json.depth", f"nesting deeper than {max_depth} levels")
        for index, child in enumerate(value):
            try:
                _check(child, max_depth, depth)
            except _Refused as refused:
                refused.reversed_path.append(index)
                raise
    elif isinstance(value, str):
        _check_string(value, "a string")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise _Refused("json.int_range", "integer outside +-2^53 (not exact in JavaScript)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused("json.non_finite", "NaN and Infinity are not JSON")
        if abs(value) >= MAX_SAFE_INT:
            # jsonb would hand it back as an exact integer beyond +-2^53: not the same document.
            raise _Refused("json.number_range", "number beyond +-2^53 is not exact")
    else:
        raise _Refused("json.type", f"{type(value).__name__} is not a JSON type")


def validate_json_value(value: Any, *, max_depth: int = 32) -> None:
    """Check that ``value`` is plain JSON that jsonb and JavaScript round-trip unchanged."""
    try:
        _check(value, max_depth, 0)
    except _Refused as refused:
        raise InvalidConfig(refused.rule, refused.message, path=join_path(refused.reversed_path[::-1])) from None


def validate_document(doc: Any, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Validate a whole config document; return its canonical bytes."""
    if not isinstance(doc, dict):
        raise InvalidConfig("document.type", "a config document must be a JSON object")
    validate_json_value(doc, max_depth=limits.max_depth)
    data = dumps(doc)
    if len(data) > limits.max_bytes:
        raise InvalidConfig(
            "document.size", f"document is {len(data)} bytes; the limit is {limits.max_bytes}"
        )
    if limits.secrets_policy:
        found = find_secret(doc)
        if found:
            rule, path = found
            raise InvalidConfig(
                rule,
                "value looks like a credential; secrets stay in environment variables "
                "(reference one as \"${VAR}\")",
                path=path,
            )
    return data
