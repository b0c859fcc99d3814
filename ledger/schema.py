"""Per-service JSON Schemas (draft 2020-12): checking a schema, validating a document (pure).

A violation is reported per failing location: the JSON Pointer of the instance, the schema
keyword that failed and the validator's message, never more than ``MAX_ERRORS`` of them. Values
are not echoed beyond what jsonschema's message says about the *schema* (the keyword's
argument); a failing value may be a secret, so ``value`` is replaced by its JSON type.

Formats are asserted (``FormatChecker``): a schema that says ``"format": "email"`` means it.
``date-time`` / ``date`` / ``time`` are checked here with the standard library (RFC 3339), so the
check does not depend on which optional format packages happen to be installed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from .canonical import dumps, loads
from .errors import InvalidConfig

__all__ = ["Violation", "SchemaViolation", "InvalidSchema", "check_schema", "violations", "validate", "MAX_ERRORS"]

MAX_ERRORS = 50
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            return False
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
        return True

    @checker.checks("date", raises=ValueError)
    def _date(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            return False
        date.fromisoformat(value)
        return True

    @checker.checks("time", raises=ValueError)
    def _time(value: object) -> bool:
        return not isinstance(value, str) or bool(_TIME.match(value))

    return checker


_FORMATS = _format_checker()


@dataclass(frozen=True)
class Violation:
    """One failing location of a document: where, which keyword, why."""

    pointer: str  # RFC 6901 JSON Pointer into the document ("" is the whole document)
    keyword: str  # the schema keyword that failed (type, required, maximum, format, ...)
    message: str
    schema_path: str  # JSON Pointer into the schema

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "keyword": self.keyword, "message": self.message,
                "schema_path": self.schema_path}


def pointer(parts: Any) -> str:
    """RFC 6901: ``["a", 0, "b/c"]`` -> ``/a/0/b~1c``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class InvalidSchema(InvalidConfig):
    """The schema itself is not a valid draft 2020-12 JSON Schema (rule ``schema.invalid``)."""

    def __init__(self, message: str, *, schema_path: str) -> None:
        super().__init__("schema.invalid", message, path=schema_path)
        self.details = {"rule": "schema.invalid", "path": schema_path, "schema_path": schema_path}


class SchemaViolation(InvalidConfig):
    """A document does not satisfy the schema in force (rule ``schema``); nothing is appended."""

    def __init__(self, service: str, schema_version: int, found: list[Violation], *, member: int | None = None):
        first = found[0]
        where = f" (change set member {member})" if member is not None else ""
        super().__init__(
            "schema",
            f"config of {service!r} does not satisfy its schema (version {schema_version}){where}: "
            f"{first.pointer or '/'}: {first.message}"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
            path=first.pointer,
        )
        self.details = {
            "rule": "schema",
            "service": service,
            "schema_version": schema_version,
            "errors": [v.to_dict() for v in found],
            **({"member": member} if member is not None else {}),
        }
        self.violations = found


def _short(message: str, instance: Any) -> str:
    """jsonschema's message without the failing value (which may be a secret)."""
    if isinstance(instance, dict | list | str) or instance is None:
        shown = repr(instance)
        if len(shown) > 12 and shown in message:
            message = message.replace(shown, f"the {type(instance).__name__}")
    elif isinstance(instance, int | float) and not isinstance(instance, bool):
        pass  # numbers are not secrets; the message stays useful ("5000 is greater than ...")
    return message[:500]


def check_schema(schema: Any) -> None:
    """Raise InvalidSchema unless ``schema`` is a valid draft 2020-12 schema (an object)."""
    if not isinstance(schema, dict):
        raise InvalidSchema("a JSON Schema must be a JSON object", schema_path="")
    declared = schema.get("$schema")
    if declared is not None and declared not in (
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
    ):
        raise InvalidSchema(
            "only draft 2020-12 is supported: $schema must be https://json-schema.org/draft/2020-12/schema",
            schema_path="/$schema",
        )
    try:
        Draft202012Validator.check_schema(schema, format_checker=_FORMATS)
    except SchemaError as exc:
        raise InvalidSchema(f"not a valid JSON Schema: {exc.message[:300]}", schema_path=pointer(exc.path)) from None
    remote = _remote_ref(schema, "")
    if remote is not None:
        raise InvalidSchema(
            "only local references ($ref starting with '#') are allowed: the ledger never fetches "
            "a schema from elsewhere",
            schema_path=remote,
        )


def _remote_ref(node: Any, path: str) -> str | None:
    """The schema path of the first ``$ref`` / ``$dynamicRef`` that is not local, or None."""
    if isinstance(node, dict):
        for key, child in node.items():
            where = f"{path}/{pointer([key])[1:]}"
            if key in ("$ref", "$dynamicRef") and isinstance(child, str) and not child.startswith("#"):
                return where
            found = _remote_ref(child, where)
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found = _remote_ref(child, f"{path}/{i}")
            if found is not None:
                return found
    return None


@functools.lru_cache(maxsize=256)
def _validator(schema_bytes: bytes) -> Draft202012Validator:
    """One compiled validator per distinct schema (keyed by its canonical bytes)."""
    return Draft202012Validator(loads(schema_bytes), format_checker=_FORMATS)


def violations(schema: dict[str, Any], document: Any, *, limit: int = MAX_ERRORS) -> list[Violation]:
    """Every failing location of ``document`` (sorted by pointer), at most ``limit``."""
    validator = _validator(dumps(schema))
    found: list[Violation] = []
    try:
        errors = validator.iter_errors(document)
        for error in errors:
            found.append(
                Violation(
                    pointer(error.absolute_path),
                    str(error.validator),
                    _short(error.message, error.instance),
                    pointer(error.absolute_schema_path),
                )
            )
            if len(found) >= limit:
                break
    except Exception as exc:  # noqa: BLE001 - e.g. an unresolvable remote $ref: the schema's fault
        return [Violation("", "$ref", f"the schema cannot be evaluated: {str(exc)[:200]}", "")]
    found.sort(key=lambda v: (v.pointer, v.keyword))
    return found


def validate(service: str, schema_version: int, schema: dict[str, Any], document: Any,
             *, member: int | None = None) -> None:
    """Raise SchemaViolation when ``document`` fails ``schema``."""
    found = violations(schema, document)
    if found:
        raise SchemaViolation(service, schema_version, found, member=member)
