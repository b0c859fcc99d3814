"""streams.yaml provisioning: idempotent apply, drift, forbidden settings, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from ledger.errors import StreamConfigError
from ledger.exit_codes import ExitCode
from ledger.streams import apply_streams, load_streams_file
from ops.embedded import REPO_ROOT

SHIPPED = (REPO_ROOT / "streams.yaml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streams.yaml"
    path.write_text(text)
    return path


async def test_apply_twice_then_drift(nats_server, tmp_path: Path) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        first = await apply_streams(js, load_streams_file(REPO_ROOT / "streams.yaml"))
        assert [c.action for c in first] == ["created", "created"]  # the ledger, the fleet's acks
        second = await apply_streams(js, load_streams_file(REPO_ROOT / "streams.yaml"))
        assert [c.action for c in second] == ["unchanged", "unchanged"]
        edited = write(tmp_path, SHIPPED.replace("max_msg_size: 1048576", "max_msg_size: 524288"))
        dry = await apply_streams(js, load_streams_file(edited), dry_run=True)
        assert dry[0].action == "would update" and dry[0].drift == {"max_msg_size": (1048576, 524288)}
        assert (await js.stream_info("CONFIG_LEDGER")).config.max_msg_size == 1048576
        lines: list[str] = []
        done = await apply_streams(js, load_streams_file(edited), report=lines.append)
        assert done[0].action == "updated" and "max_msg_size: 1048576 -> 524288" in lines[0]
        info = await js.stream_info("CONFIG_LEDGER")
        assert info.config.max_msg_size == 524288 and info.config.deny_delete and info.config.allow_direct
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("max_msgs_per_subject: -1", "max_msgs_per_subject: 10", "max_msgs_per_subject"),
        ("max_age: 0", "max_age: 3600", "max_age"),
        ("max_msgs: -1", "max_msgs: 1000", "max_msgs"),
        ("max_bytes: -1", "max_bytes: 1000000", "max_bytes"),
        ("allow_rollup_hdrs: false", "allow_rollup_hdrs: true", "allow_rollup_hdrs"),
        ("deny_delete: true", "deny_delete: false", "deny_delete"),
        ("deny_purge: true", "deny_purge: false", "deny_purge"),
        ("allow_atomic: true", "allow_atomic: true\n    persist_mode: async", "persist_mode"),
        ("storage: file", "storage: disk", "storage"),
    ],
)
def test_forbidden_settings_are_refused(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert old in SHIPPED
    with pytest.raises(StreamConfigError) as info:
        load_streams_file(write(tmp_path, SHIPPED.replace(old, new)))
    assert field in str(info.value)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(StreamConfigError, match=r"streams.yaml:\d+"):
        load_streams_file(write(tmp_path, "streams:\n  - name: [unclosed\n"))


def test_cli_apply_dry_run_and_refusal(nats_server, tmp_path: Path) -> None:
    env = {**os.environ, "NATS_URL": nats_server.url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ledger", "streams", "apply", *args],
                              capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)

    dry = run("--dry-run")
    assert dry.returncode == ExitCode.DRIFT and "would create" in dry.stdout
    assert run().returncode == 0
    again = run()
    assert again.returncode == 0 and "unchanged" in again.stdout
    bad = run("--file", str(write(tmp_path, SHIPPED.replace("deny_purge: true", "deny_purge: false"))))
    assert bad.returncode == 2 and "deny_purge" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
