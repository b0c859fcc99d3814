"""ledger.schema: draft 2020-12 checks, violations as JSON Pointer + keyword + message."""

from __future__ import annotations

import pytest

from ledger.schema import InvalidSchema, SchemaViolation, check_schema, validate, violations

SCHEMA = {
    "type": "object",
    "properties": {
        "port": {"type": "integer", "maximum": 65535},
        "owner": {"type": "string", "format": "email"},
        "since": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "a/b": {"type": "boolean"},
    },
    "required": ["port"],
}


def test_a_valid_document_has_no_violations() -> None:
    check_schema(SCHEMA)
    assert violations(SCHEMA, {"port": 80, "owner": "a@b.example", "since": "2026-01-02T03:04:05Z"}) == []


def test_every_failing_location_is_a_pointer_with_its_keyword() -> None:
    found = violations(SCHEMA, {"port": 70000, "owner": "nope", "since": "2026-13-40T00:00:00Z",
                                "tags": ["x", 3], "a/b": "yes"})
    got = {(v.pointer, v.keyword) for v in found}
    assert got == {("/port", "maximum"), ("/owner", "format"), ("/since", "format"), ("/tags/1", "type"),
                   ("/a~1b", "type")}
    assert all(v.message for v in found)


def test_missing_required_is_reported_at_the_object() -> None:
    [v] = violations(SCHEMA, {})
    assert (v.pointer, v.keyword, v.schema_path) == ("", "required", "/required")


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"type": "nonsense"}, "/type"),
        ({"properties": {"x": {"minimum": "five"}}}, "/properties/x/minimum"),
        ([], ""),
        ({"$ref": "https://example.com/schema.json"}, "/$ref"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "/$schema"),
    ],
)
def test_an_invalid_schema_is_refused_with_rule_schema_invalid(bad: object, where: str) -> None:
    with pytest.raises(InvalidSchema) as info:
        check_schema(bad)
    assert info.value.rule == "schema.invalid"
    assert info.value.details["schema_path"] == where


def test_validate_raises_rule_schema_with_every_error_and_the_member() -> None:
    with pytest.raises(SchemaViolation) as info:
        validate("svc", 3, SCHEMA, {"port": "80", "tags": [1]}, member=2)
    d = info.value.details
    assert d["rule"] == "schema" and d["schema_version"] == 3 and d["member"] == 2
    assert [e["pointer"] for e in d["errors"]] == ["/port", "/tags/0"]


def test_a_long_failing_string_is_not_echoed() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    [v] = violations({"properties": {"x": {"type": "integer"}}}, {"x": secret})
    assert secret not in v.message
