"""The API against its own OpenAPI document: schemathesis (property-based, from the document the
running app serves) drives every operation of ``api.routes.ROUTES`` over real HTTP, with the admin
token, and checks every response: no 5xx, the status code, the content type, the headers and the
body schema are the documented ones.

Bounded for ``make test`` (``API_FUZZ_EXAMPLES`` per operation, default 25, and a time budget
``API_FUZZ_SECONDS``, default 75); ``API_FUZZ_EXAMPLES=500 API_FUZZ_SECONDS=1800`` for a long run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from api.routes import ROUTES

from .helpers import TOKENS, Stack
from .live import live_api

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "25"))
SECONDS = int(os.environ.get("API_FUZZ_SECONDS", "75"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

pytestmark = pytest.mark.timeout(SECONDS + 300)


def _summary(report: Path) -> dict[str, int]:
    """Counts of the NDJSON event log: test cases, responses by status class, failures."""
    cases = failures = errors = 0
    statuses: dict[str, int] = {}
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            rec = event["ScenarioFinished"].get("recorder", {})
            for interaction in rec.get("interactions", {}).values():
                response = interaction.get("response")
                if response:
                    cls = f"{response['status_code'] // 100}xx"
                    statuses[cls] = statuses.get(cls, 0) + 1
            for check_list in rec.get("checks", {}).values():
                failures += sum(1 for c in check_list if c.get("status") == "failure")
            cases += len(rec.get("cases", {}))
        if "NonFatalError" in event or "FatalError" in event:
            errors += 1
    return {"cases": cases, "failures": failures, "errors": errors, **statuses}


async def test_every_operation_conforms_to_the_document(stack: Stack, tmp_path: Path) -> None:
    async with live_api(stack, write_wait_ms=300, sse_heartbeat_s=0.5) as (host, port):
        report = tmp_path / "events.ndjson"
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"http://{host}:{port}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {TOKENS['admin']}",
            "--checks", CHECKS,
            "--max-examples", str(EXAMPLES),
            "--max-time", str(SECONDS),
            "--phases", "examples,coverage,fuzzing",
            "--workers", "1",  # hypothesis + CPython 3.11 ast.parse are not thread-safe together
            "--seed", os.environ.get("API_FUZZ_SEED", "20261201"),
            "--suppress-health-check", "all",
            "--request-timeout", "3",
            "--report", "ndjson", "--report-ndjson-path", str(report),
            "--warnings", "off",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,  # its cache
            env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    summary = _summary(report)
    print(text[-6000:])
    print("fuzz summary:", summary)
    assert proc.returncode == 0, text[-6000:]
    assert summary.get("5xx", 0) == 0 and summary["failures"] == 0, summary
    assert summary["cases"] >= len(ROUTES), summary  # every operation was exercised


async def test_event_stream_data_conforms_to_the_document(api, svc: str) -> None:
    """The ``data:`` of each Server-Sent Event against its documented schema (the fuzzer checks
    the events' framing; this checks what they carry)."""
    import jsonschema
    import orjson

    doc = await (await api.get("/api/v1/openapi.json")).json()
    media = doc["paths"]["/api/v1/config/{service}/watch"]["get"]["responses"]["200"]["content"]
    data_schema = media["text/event-stream"]["schema"]["properties"]["data"]["contentSchema"]
    validator = jsonschema.Draft202012Validator({**data_schema, "components": doc["components"]})
    headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
    for body in ({"a": {"b": 1}}, {"a": {"c": [1, 2]}}):
        assert (await api.post(f"/api/v1/config/{svc}", json=body, headers=headers)).status == 200
    seen = []
    async with api.get(f"/api/v1/config/{svc}/watch", params={"last_event_id": "0"}, headers=headers) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen.append(orjson.loads(line[6:]))
                if len(seen) == 2:
                    break
    for data in seen:
        validator.validate(data)
    assert [d["version"] for d in seen] == [1, 2] and seen[1]["diff"]["added"] == [{"path": "/a/c", "value": [1, 2]}]
