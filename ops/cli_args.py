"""Values the CLI reads from its arguments: instants, version-or-instant specs, documents.

Each parser raises ``UsageError`` with a one-line message that names the argument and shows
an example of what it expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from ledger import instants
from ledger.errors import InvalidInstant, UsageError

__all__ = ["parse_instant", "format_instant", "VersionOrInstant", "parse_version_or_instant",
           "load_document", "parse_json_object", "parse_object", "key_path", "lookup"]

_INSTANT_EXAMPLE = "e.g. 2026-11-28T10:30:00Z or 2026-11-28T11:30:00+01:00"


def parse_instant(text: str, *, what: str = "time") -> datetime:
    """An RFC 3339 instant with a timezone (``Z`` or an offset), or ``now`` (``ledger.instants``)."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    return instants.parse_instant(text, what)


def format_instant(instant: datetime) -> str:
    """RFC 3339, UTC, microseconds, ``Z``: how the CLI sends instants to the API."""
    return instants.format_instant(instant)


@dataclass(frozen=True)
class VersionOrInstant:
    """``7`` (a version) or an RFC 3339 instant, as ``diff`` and ``rollback --to`` take."""

    version: int | None = None
    instant: datetime | None = None

    def query_value(self) -> str:
        if self.version is not None:
            return str(self.version)
        assert self.instant is not None
        return format_instant(self.instant)

    def __str__(self) -> str:
        return f"version {self.version}" if self.version is not None else self.query_value()


def parse_version_or_instant(text: str, *, what: str) -> VersionOrInstant:
    value = text.strip()
    if value.isdigit():
        version = int(value)
        if version < 1:
            raise UsageError(f"{what}: versions start at 1, got {value}")
        return VersionOrInstant(version=version)
    try:
        return VersionOrInstant(instant=parse_instant(value, what=what))
    except InvalidInstant as exc:
        if exc.rule == "instant.range":
            raise  # an instant, just not one the ledger holds: say so
        raise UsageError(
            f"{what}: {text!r} is neither a version (a positive integer) nor an RFC 3339 time "
            f"({_INSTANT_EXAMPLE})"
        ) from None


def parse_json_object(text: str | bytes, *, what: str) -> dict[str, Any]:
    """Parse JSON text that must be an object (a config document or a merge patch)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{what}: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_object(raw: str | bytes, *, what: str, fmt: str = "auto") -> dict[str, Any]:
    """A JSON or YAML object; ``auto`` tries JSON first, then YAML (a superset of JSON)."""
    if fmt == "json":
        return parse_json_object(raw, what=what)
    if fmt == "auto":
        try:
            return parse_json_object(raw, what=what)
        except UsageError:
            if raw.strip()[:1] in (b"{", "{"):
                raise  # meant as JSON: its own error is the useful one
    import yaml

    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{what}{where}: neither JSON nor valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what}: expected a mapping (an object) at the top, got {type(value).__name__}")
    return value


def load_document(source: str, stdin: IO[bytes], fmt: str = "auto") -> dict[str, Any]:
    """A config document from a file or ``-`` (stdin), JSON or YAML (``fmt``, or by extension)."""
    if source == "-":
        return parse_object(stdin.read(), what="stdin", fmt=fmt)
    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror}") from None
    if fmt == "auto":
        fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "json" if path.suffix.lower() == ".json" \
            else "auto"
    return parse_object(raw, what=source, fmt=fmt)


def key_path(text: str) -> list[str]:
    """``db.pool`` or ``/db/pool`` (a JSON pointer) -> ``["db", "pool"]``."""
    if text.startswith("/"):
        return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]
    return [p for p in text.split(".") if p != ""]


def lookup(document: Any, path: list[str], *, what: str) -> Any:
    """The value at ``path``; NotFound names the first missing key."""
    from ledger.errors import NotFound

    value = document
    for i, part in enumerate(path):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            shown = ".".join(path[: i + 1])
            raise NotFound(f"{what} has no key {shown!r}")
    return value
