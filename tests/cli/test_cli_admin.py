"""The admin commands against a running stack (`config-ledger up --auth`): each command's happy
path, and one user error each — one line on stderr and the documented exit code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.stack import EXAMPLE_SERVICE

from .conftest import CliResult, CliRunner, RunningStack


@pytest.fixture
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def one_line_error(result: CliResult, code: int, fragment: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert len(result.err_lines) == 1, result.err
    assert "Traceback" not in result.err
    assert fragment in result.err, result.err


def seed(cli: CliRunner, stack: RunningStack, service: str, *sizes: int) -> None:
    for size in sizes:
        done = cli("set", service, "-", "--reason", f"size {size}", env=stack.env(),
                   stdin=json.dumps({"operational": {"batch_size": size}}).encode())
        assert done.code == 0, done.err


def test_get(cli: CliRunner, stack: RunningStack) -> None:
    human = cli("get", EXAMPLE_SERVICE, "-o", "table", env=stack.env())  # piped: the bare document
    assert human.code == 0, human.err
    assert f"{EXAMPLE_SERVICE}  version 1" in human.out and '"batch_size": 100' in human.out
    machine = cli("get", EXAMPLE_SERVICE, "--json", env=stack.env())
    assert json.loads(machine.out)["config"]["operational"]["gap_check_interval_hours"] == 1
    one_line_error(cli("get", "no-such-service", env=stack.env()), 1, "Config not found for service")


def test_get_without_a_token_is_refused(cli: CliRunner, stack: RunningStack) -> None:
    result = cli("get", EXAMPLE_SERVICE, env=stack.env(CONFIG_LEDGER_TOKEN=""))
    one_line_error(result, 2, "CONFIG_LEDGER_TOKEN")


def test_get_a_version_and_an_instant(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1)
    between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seed(cli, stack, service, 2)
    assert '"batch_size": 1' in cli("get", service, "--version", "1", env=stack.env()).out
    at = cli("get", service, "--at", between, "--json", env=stack.env())
    assert at.code == 0 and json.loads(at.out)["version"] == 1
    one_line_error(cli("get", service, "--at", "last tuesday", env=stack.env()), 2, "--at")


def test_set_from_a_file_with_a_reason(cli: CliRunner, stack: RunningStack, service: str,
                                       tmp_path: Path) -> None:
    doc = tmp_path / "doc.yaml"
    doc.write_text("operational:\n  batch_size: 50\n")
    result = cli("set", service, str(doc), "--reason", "from yaml", env=stack.env())
    assert result.code == 0, result.err
    assert f"set {service} → version 1" in result.out
    history = json.loads(cli("history", service, "--json", env=stack.env()).out)
    assert history["versions"][0]["reason"] == "from yaml"
    one_line_error(cli("set", service, str(tmp_path / "missing.json"), env=stack.env()), 2, "cannot read")


def test_set_refuses_a_secret_without_echoing_it(cli: CliRunner, stack: RunningStack, service: str) -> None:
    secret = "postgresql://admin:hunter2hunter2@db:5432/app"
    result = cli("set", service, "-", env=stack.env(), stdin=json.dumps({"db": {"url": secret}}).encode())
    assert result.code == 2 and len(result.err_lines) == 1
    assert "hunter2" not in result.err


def test_patch_and_conflict(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1)
    patched = cli("patch", service, '{"operational": {"batch_size": 7}, "features": {"x": true}}',
                  "--reason", "tune", "--if-version", "1", env=stack.env())
    assert patched.code == 0, patched.err
    assert f"patched {service} → version 2" in patched.out
    stale = cli("patch", service, '{"operational": {"batch_size": 8}}', "--if-version", "1", env=stack.env())
    one_line_error(stale, 4, "version")
    one_line_error(cli("patch", service, "{not json", env=stack.env()), 2, "invalid JSON")


def test_history(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1, 2, 3)
    human = cli("history", service, env=stack.env())
    assert human.code == 0, human.err
    assert human.out.index("size 3") < human.out.index("size 1")  # newest first
    page = cli("history", service, "--limit", "2", env=stack.env())
    assert "size 1" not in page.out and "--cursor" in page.err
    one_line_error(cli("history", service, "--limit", "0", env=stack.env()), 2, "--limit")


def test_diff(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1, 2)
    human = cli("diff", service, "1", "2", env=stack.env())
    assert human.code == 0, human.err
    assert "/operational/batch_size" in human.out and "changed" in human.out
    machine = json.loads(cli("diff", service, "1", "2", "--json", env=stack.env()).out)
    assert machine["changed"] == [{"path": "/operational/batch_size", "from": 1, "to": 2}]
    one_line_error(cli("diff", service, "one", "2", env=stack.env()), 2, "neither a version")


def test_rollback(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1, 2)
    result = cli("rollback", service, "--to", "1", "--reason", "undo", env=stack.env())
    assert result.code == 0, result.err
    assert "version 3" in result.out
    current = json.loads(cli("get", service, "--json", env=stack.env()).out)
    assert current["kind"] == "rolled_back" and current["config"] == {"operational": {"batch_size": 1}}
    one_line_error(cli("rollback", service, "--to", "99", env=stack.env()), 2, "99")


def test_delete_and_services(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 1)
    listed = cli("services", env=stack.env())
    assert listed.code == 0 and service in listed.out and EXAMPLE_SERVICE in listed.out
    deleted = cli("delete", service, "--reason", "retired", env=stack.env())
    assert deleted.code == 0, deleted.err
    one_line_error(cli("get", service, env=stack.env()), 1, "was deleted")
    one_line_error(cli("delete", f"{service}-never", env=stack.env()), 1, "not found")  # not a usage error
    one_line_error(cli("services", env=stack.env(CONFIG_LEDGER_TOKEN="wrong-token-0123456789")), 2,
                   "invalid bearer token")


def test_snapshot(cli: CliRunner, stack: RunningStack, service: str) -> None:
    seed(cli, stack, service, 5)
    human = cli("snapshot", "--at", "now", env=stack.env())
    assert human.code == 0, human.err
    assert service in human.out and EXAMPLE_SERVICE in human.out
    machine = json.loads(cli("snapshot", "--at", "now", "--json", env=stack.env()).out)
    assert machine["services"][service]["config"] == {"operational": {"batch_size": 5}}
    one_line_error(cli("snapshot", "--at", "2026-11-28", env=stack.env()), 2, "RFC 3339 date-time")


def test_watch_user_error(cli: CliRunner, stack: RunningStack) -> None:
    one_line_error(cli("watch", "Not A Service!", env=stack.env()), 2, "service name")


def test_unreachable_api_is_exit_3(cli: CliRunner) -> None:
    from ops.embedded import free_port

    result = cli("get", EXAMPLE_SERVICE, "--url", f"http://127.0.0.1:{free_port()}")
    one_line_error(result, 3, "cannot reach the API")
