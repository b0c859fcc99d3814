"""config-ledger streams apply (the ledger's provisioning, through the CLI) on a private NATS."""

from __future__ import annotations

from pathlib import Path

from ops.embedded import REPO_ROOT, NatsServer

from .conftest import CliRunner


def test_streams_apply_creates_then_finds_nothing_to_change(nats_server: NatsServer, cli: CliRunner,
                                                            tmp_path: Path) -> None:
    file = str(REPO_ROOT / "streams.yaml")
    created = cli("streams", "apply", "--file", file, "--nats-url", nats_server.url)
    assert created.code == 0, created.err
    assert "stream CONFIG_LEDGER: created" in created.out
    again = cli("streams", "apply", "--file", file, "--dry-run", env={"NATS_URL": nats_server.url})
    assert again.code == 0 and "unchanged" in again.out


def test_streams_apply_refuses_a_file_that_would_break_the_ledger(nats_server: NatsServer, cli: CliRunner,
                                                                 tmp_path: Path) -> None:
    bad = tmp_path / "streams.yaml"
    bad.write_text((REPO_ROOT / "streams.yaml").read_text().replace("max_age: 0", "max_age: 3600"))
    result = cli("streams", "apply", "--file", str(bad), "--nats-url", nats_server.url)
    assert result.code == 2
    assert len(result.err_lines) == 1 and "max_age must be 0" in result.err
