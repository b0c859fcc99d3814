"""The CLI as people and scripts use it (issue 18): the real console script in a subprocess, at
COLUMNS=80, with stdout a pipe (as under `| jq`, `| cut`), against the session's `up --auth`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ledger.exit_codes import ExitCode

from .conftest import RunningStack, clean_env, cli_argv

DOC = {"db": {"pool": 10, "host": "db.internal"}, "features": {"beta": False}}


def run(*argv: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_argv(), *argv], input=stdin, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def env(stack: RunningStack) -> dict[str, str]:
    return clean_env(COLUMNS="80", **stack.env())


@pytest.fixture
def svc(env: dict[str, str]) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    assert run("set", name, "-", "-m", "create", env=env, stdin=json.dumps(DOC)).returncode == 0
    return name


def one_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_get_is_pipeable_with_formats_and_key_paths(env: dict[str, str], svc: str) -> None:
    piped = run("get", svc, env=env)
    assert piped.returncode == 0 and json.loads(piped.stdout) == DOC  # `| jq .` works, no envelope
    assert json.loads(run("get", svc, "-o", "json", env=env).stdout) == DOC
    assert yaml.safe_load(run("get", svc, "-o", "yaml", env=env).stdout) == DOC
    assert run("get", svc, "db.pool", env=env).stdout == "10\n"
    assert run("get", svc, "/db/host", "-o", "raw", env=env).stdout == "db.internal\n"
    assert json.loads(run("get", svc, "db", env=env).stdout) == DOC["db"]
    assert json.loads(run("get", svc, "--json", env=env).stdout)["version"] == 1  # the API's envelope
    one_error(run("get", svc, "db.nope", env=env), ExitCode.NOT_FOUND, "no key 'db.nope'")


def test_get_piped_into_set_is_unchanged_and_appends_nothing(env: dict[str, str], svc: str) -> None:
    document = run("get", svc, env=env).stdout
    again = run("set", svc, "-", "-m", "same", env=env, stdin=document)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert run("patch", svc, "{}", "-m", "nothing", env=env).returncode == 0
    versions = run("history", svc, env=env).stdout.splitlines()
    assert [line.split("\t")[0] for line in versions] == ["1"]


def test_set_and_patch_take_yaml_on_stdin(env: dict[str, str], svc: str) -> None:
    patched = run("patch", svc, "-", "--format", "yaml", "-m", "pool", env=env, stdin="db:\n  pool: 20\n")
    assert patched.returncode == 0, patched.stderr
    assert run("get", svc, "db.pool", env=env).stdout == "20\n"
    auto = run("set", svc, "-", "-m", "yaml, detected", env=env, stdin="db:\n  pool: 30\n")
    assert auto.returncode == 0 and run("get", svc, "db.pool", env=env).stdout == "30\n"
    one_error(run("set", svc, "-", "--format", "json", "-m", "x", env=env, stdin="db: 1\n"),
              ExitCode.USAGE, "invalid JSON")


def test_history_shows_key_diffs_at_80_columns(env: dict[str, str], svc: str) -> None:
    assert run("patch", svc, '{"db": {"pool": 25}}', "-m", "a longer reason that has to wrap "
               "somewhere because it does not fit in eighty columns at all", env=env).returncode == 0
    human = run("history", svc, "-o", "table", env=env)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "    ~ /db/pool: 10 → 25" in lines  # the key diff, not the document
    assert "    + /db/host: \"db.internal\"" in lines  # the first version key by key
    assert not any("{" in line for line in lines)
    words = set(human.stdout.split())
    assert "somewhere" in words and "/db/pool:" in words  # wrapped between words, never inside one
    piped = run("history", svc, env=env).stdout.splitlines()
    assert piped[0].split("\t")[:2] == ["2", "patched"] and piped[0].endswith("~ /db/pool: 10 → 25")
    assert not any(ch in run("history", svc, env=env).stdout for ch in "━│┃")


def test_listings_are_plain_tsv_when_piped(env: dict[str, str], svc: str) -> None:
    names = run("services", env=env).stdout.splitlines()
    assert svc in [line.split("\t")[0] for line in names]
    assert not any(line.startswith(("services", "service\t", "━")) for line in names)
    with_headers = run("services", "-o", "tsv", env=env).stdout.splitlines()
    assert with_headers[0].split("\t")[:2] == ["service", "version"]
    assert run("services", "-o", "tsv", "--no-headers", env=env).stdout.splitlines()[0].split("\t")[0] != "service"


def test_exit_codes_and_one_line_errors_with_a_next_step(env: dict[str, str], svc: str) -> None:
    one_error(run("get", f"{svc}-missing", env=env), ExitCode.NOT_FOUND, "Config not found", "config-ledger services")
    one_error(run("get", svc, "--version", "99", env=env), ExitCode.NOT_FOUND, "no version 99",
              f"config-ledger history {svc}")
    one_error(run("diff", svc, "40", "41", env=env), ExitCode.NOT_FOUND, "no version", f"config-ledger history {svc}")
    one_error(run("delete", f"{svc}-missing", "-m", "x", env=env), ExitCode.NOT_FOUND, "not found")
    one_error(run("set", svc, "-", "--if-version", "7", "-m", "x", env=env, stdin='{"a": 1}'),
              ExitCode.CONFLICT, "version")
    one_error(run("get", env=env), ExitCode.USAGE, "required")
    down = {**env, "CONFIG_LEDGER_URL": "http://127.0.0.1:9"}
    one_error(run("get", svc, env=down), ExitCode.UNAVAILABLE, "cannot reach the API at http://127.0.0.1:9",
              "config-ledger up", "--url")


def test_deleted_service_says_when_by_whom_and_how_to_restore(env: dict[str, str], svc: str) -> None:
    assert run("delete", svc, "-m", "retire", env=env).returncode == 0
    line = one_error(run("get", svc, env=env), ExitCode.NOT_FOUND, "was deleted", "by admin",
                     f"config-ledger rollback {svc}")
    assert "version 2" in line
    restored = run("rollback", svc, "-m", "undo", env=env)  # defaults to the previous version
    assert restored.returncode == 0, restored.stderr
    assert json.loads(run("get", svc, env=env).stdout) == DOC


def test_rollback_defaults_to_the_previous_version_and_snapshot_to_now(env: dict[str, str], svc: str) -> None:
    assert run("patch", svc, '{"db": {"pool": 99}}', "-m", "oops", env=env).returncode == 0
    back = run("rollback", svc, "-m", "undo", env=env)
    assert back.returncode == 0 and "version 1" in back.stdout
    assert run("get", svc, "db.pool", env=env).stdout == "10\n"
    snap = run("snapshot", "-o", "json", env=env)
    assert snap.returncode == 0 and snap.stdout and svc in json.loads(snap.stdout)["services"]


def test_edit_writes_back_with_if_match_and_refuses_on_conflict(env: dict[str, str], svc: str,
                                                                 tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('pool: 10', 'pool: 11'))\n")
    edited = run("edit", svc, "-m", "edit", env={**env, "EDITOR": f"{sys.executable} {editor}"})
    assert edited.returncode == 0, edited.stderr
    assert run("get", svc, "db.pool", env=env).stdout == "11\n"
    # Someone else changes the service while the editor is open: the edit is refused with their diff.
    racing = tmp_path / "racing.py"
    their_change = [*cli_argv(), "patch", svc, '{"features": {"beta": true}}', "-m", "them"]
    racing.write_text(
        "import subprocess, sys, pathlib\n"
        f"subprocess.run({their_change!r}, check=True, capture_output=True)\n"
        "p = pathlib.Path(sys.argv[1])\np.write_text(p.read_text().replace('pool: 11', 'pool: 12'))\n")
    refused = run("edit", svc, "-m", "mine", env={**env, "EDITOR": f"{sys.executable} {racing}"})
    line = one_error(refused, ExitCode.CONFLICT, "changed since version 2", "~ /features/beta: false → true")
    kept = Path(line.split("kept in ")[1].split(":")[0])
    assert "pool: 12" in kept.read_text()
    kept.unlink()
    assert run("get", svc, "db.pool", env=env).stdout == "11\n"


def test_global_flags_anywhere_version_typos_examples_completion(env: dict[str, str], svc: str,
                                                                 stack: RunningStack) -> None:
    bare = {k: v for k, v in env.items() if k != "CONFIG_LEDGER_URL"}
    before = run("--url", stack.api_url, "-o", "json", "get", svc, env=bare)
    after = run("get", svc, "--url", stack.api_url, env=bare)
    assert before.returncode == after.returncode == 0 and json.loads(before.stdout) == json.loads(after.stdout)
    version = run("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("config-ledger ")
    one_error(run("servics", env=env), ExitCode.USAGE, "did you mean 'services'?")
    for command in ("get", "set", "patch", "history", "rollback", "snapshot", "edit", "verify"):
        assert "example:\n  config-ledger " in run(command, "--help", env=env).stdout, command
    bash = run("completion", "bash", env=env).stdout
    assert "complete -F _config_ledger config-ledger" in bash and "services" in bash and "--if-version" in bash
    checked = subprocess.run(["bash", "-n"], input=bash, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "#compdef config-ledger" in run("completion", "zsh", env=env).stdout
    assert "complete -c config-ledger" in run("completion", "fish", env=env).stdout


def test_a_broken_pipe_exits_quietly(env: dict[str, str], svc: str) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write is EPIPE
    try:
        proc = subprocess.run([*cli_argv(), "history", svc], env=env, stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_the_cli_finds_the_running_stack_by_itself(stack: RunningStack, svc: str) -> None:
    endpoints = json.loads((stack.data_dir / "endpoints.json").read_text())
    assert endpoints["api_url"] == stack.api_url and endpoints["nats_url"] == stack.nats_url
    # No URL and no NATS_URL: what `make run` then `config-ledger verify` does.
    env = clean_env(COLUMNS="80", LEDGER_DATA_DIR=str(stack.data_dir), CONFIG_LEDGER_TOKEN=stack.token)
    assert json.loads(run("get", svc, env=env).stdout) == DOC
    verified = run("verify", svc, env=env)
    assert verified.returncode == 0, verified.stderr
    # Elsewhere: a missing stream names the server asked and what to set.
    elsewhere = clean_env(LEDGER_DATA_DIR=str(stack.data_dir / "nowhere"), NATS_URL=stack.nats_url,
                          LEDGER_STREAM="NO_SUCH_STREAM")
    one_error(run("verify", env=elsewhere), ExitCode.NOT_FOUND, f"no stream NO_SUCH_STREAM on {stack.nats_url}",
              "(NATS_URL)", "--nats-url")


def test_help_and_get_import_nothing_heavy(env: dict[str, str], svc: str) -> None:
    """Start-up stays small (measured by bench/bench_cli.py): these never load the heavy modules."""
    heavy = {"aiohttp", "rich", "nats", "pydantic", "asyncio", "yaml"}
    for argv in (["--help"], ["get", svc]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ops.cli", *argv], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        loaded = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                  if line.startswith("import time:")}
        assert not loaded & heavy, (argv, loaded & heavy)


def test_watch_of_a_service_without_config_says_so_at_once(env: dict[str, str]) -> None:
    name = f"c-{uuid.uuid4().hex[:10]}-later"
    proc = subprocess.Popen([*cli_argv(), "watch", name], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline() if proc.stderr else ""  # blocks until the first line (or exit)
        assert "Config not found" in first and "waiting for its next version" in first, first
        assert run("set", name, "-", "-m", "now", env=env, stdin='{"a": 1}').returncode == 0
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while line.startswith("(") or not line.strip():
            line = proc.stdout.readline()
        assert name in line and "v1" in line, line
    finally:
        proc.kill()
        proc.wait(30)
