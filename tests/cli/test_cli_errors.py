"""User errors of the CLI itself: one line on stderr, the documented exit code, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ops.embedded import free_port
from tests.support.waiting import wait_for

from .conftest import CliResult, CliRunner, RunningStack, clean_env, start_up
from .proctree import descendants, survivors


def one_line(result: CliResult, code: int, fragment: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    assert len(result.err_lines) == 1 and fragment in result.err and "Traceback" not in result.err, result.err


def test_help_lists_the_exit_codes(cli: CliRunner) -> None:
    result = cli("--help")
    assert result.code == 0
    for line in ("0    ok", "1    not found", "2    usage error", "3    unavailable", "4    conflict",
                 "5    integrity", "6    drift", "70   internal error", "130  interrupted"):
        assert line in result.out
    assert "exit codes" in cli("get", "--help").out


@pytest.mark.parametrize(("argv", "fragment"), [
    ((), "required: COMMAND"),
    (("frobnicate",), "invalid choice"),
    (("get",), "required: service"),
    (("get", "x", "--version", "two"), "invalid int value"),
    (("rollback", "x", "--to"), "--to"),
])
def test_argument_errors_are_one_line_exit_2(cli: CliRunner, argv: tuple[str, ...], fragment: str) -> None:
    one_line(cli(*argv), 2, fragment)


def test_an_invalid_variable_is_named(cli: CliRunner, tmp_path: Path) -> None:
    one_line(cli("up", env={"API_PORT": "seventy", "LEDGER_DATA_DIR": str(tmp_path)}), 2, "API_PORT")
    one_line(cli("get", "x", env={"CONFIG_LEDGER_URL": "ftp://x"}), 2, "http://")


def test_up_refuses_a_taken_api_port(cli: CliRunner, stack: RunningStack, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"NATS_URL": stack.nats_url, "DATABASE_URL": stack.database_url, "API_PORT": str(port),
               "LEDGER_DATA_DIR": str(tmp_path / "data")}
        result = cli("up", "--no-seed", env=env)
    assert result.code == 2 and "API_PORT" in result.err_lines[-1] and "not free" in result.err_lines[-1]


def test_up_refuses_a_data_folder_in_use(cli: CliRunner, stack: RunningStack) -> None:
    result = cli("up", env={"LEDGER_DATA_DIR": str(stack.data_dir), "API_PORT": str(free_port())})
    one_line(result, 2, "another `config-ledger up`")


async def test_a_child_failing_at_startup_fails_up_and_leaves_nothing(stack: RunningStack, tmp_path: Path) -> None:
    env = clean_env(NATS_URL=stack.nats_url, DATABASE_URL=stack.database_url, API_PORT=str(free_port()),
                    LEDGER_DATA_DIR=str(tmp_path / "data"), API_AUTH="on", API_TOKENS="[{token: short}]")
    up = start_up(env, tmp_path / "up.log", "--no-seed")
    tree: dict[int, int] = {}

    def watch_tree() -> bool:
        tree.update(descendants(up.proc.pid))
        return up.proc.poll() is not None

    await wait_for(watch_tree, timeout=60, what="`up` to give up")
    assert up.proc.returncode == 2, up.output()[-2000:]
    assert "startup failed" in up.output() and "api exited with code 2" in up.output()
    assert not survivors(tree)
