"""`set|patch|rollback --plan`, `apply FILE` and `blame SERVICE` against a running stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from .conftest import CliRunner, RunningStack
from .test_cli_admin import one_line_error, seed


@pytest.fixture
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def versions(cli: CliRunner, stack: RunningStack, service: str) -> list[int]:
    out = cli("history", service, "--json", env=stack.env())
    return [v["version"] for v in json.loads(out.out)["versions"]] if out.code == 0 else []


def test_plan_prints_the_diff_and_appends_nothing(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1, 2)
    plan = cli("patch", service, '{"operational": {"batch_size": 7, "new": true}}', "--plan", env=stack.env())
    assert plan.code == 0, plan.err
    assert "version 2 → 3" in plan.out and "would be accepted" in plan.out
    assert "/operational/batch_size" in plan.out and "/operational/new" in plan.out
    assert "nothing was appended" in plan.out
    back = cli("rollback", service, "--to", "1", "--plan", "--json", env=stack.env())
    assert back.code == 0 and json.loads(back.out)["diff"]["changed"][0]["to"] == 1
    refused = cli("set", service, "-", "--plan", "--if-version", "1", env=stack.env(), stdin=b'{"a": 1}')
    assert refused.code == 1 and "would be refused" in refused.out and "conflict" in refused.out
    assert versions(cli, stack, service) == [2, 1]


def test_apply_a_yaml_change_set_and_blame(cli: CliRunner, stack: RunningStack, service: str,
                                           tmp_path: Path) -> None:
    seed(cli, stack, service, 1)
    other = f"{service}-b"
    changes = tmp_path / "changes.yaml"
    changes.write_text(
        "reason: move both\n"
        "changes:\n"
        f"  - {{service: {service}, op: patch, patch: {{operational: {{batch_size: 5}}}}, if_match: 1}}\n"
        f"  - {{service: {other}, op: replace, config: {{mode: fast}}}}\n"
    )
    plan = cli("apply", str(changes), "--plan", env=stack.env())
    assert plan.code == 0, plan.err
    assert versions(cli, stack, service) == [1]
    done = cli("apply", str(changes), "--json", env=stack.env())
    assert done.code == 0, done.err
    cs = json.loads(done.out)["changeset_id"]
    assert versions(cli, stack, service) == [2, 1] and versions(cli, stack, other) == [1]
    again = cli("apply", str(changes), env=stack.env())  # if_match 1 no longer holds: 409
    assert again.code == 4 and service in again.err and "Traceback" not in again.err
    blame = cli("blame", service, "--json", env=stack.env())
    assert blame.code == 0, blame.err
    lines = {x["pointer"]: x for x in json.loads(blame.out)["lines"]}
    assert lines["/operational/batch_size"]["changeset_id"] == cs
    assert lines["/operational/batch_size"]["reason"] == "move both"
    human = cli("blame", service, env=stack.env())
    assert human.code == 0 and "/operational/batch_size" in human.out and cs[:8] in human.out


def test_apply_refuses_a_malformed_file(cli: CliRunner, stack: RunningStack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("changes: nope\n")
    one_line_error(cli("apply", str(bad), env=stack.env()), 2, "changes")
