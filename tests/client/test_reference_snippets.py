"""The reference document's ConfigClient snippets, run unchanged except for their import line.

CONFIG_ARCHITECTURE.md: "Pattern 1: Service Configuration Class" (and its "Usage in Service"),
the ConfigClient "Example Usage", and "4. Test Fallback Scenarios" (``test_fallback`` below is
the document's own test, collected by pytest as it stands). The snippets read ``os.environ``,
so these tests set the environment with ``monkeypatch``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger import Ledger, LedgerSettings, Patch, Replace
from tests.support.waiting import wait_for

from .hub_contract_fake import HubContractFake

SERVICE = "polygon-historical-downloader"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stream, no hub, LKG files in the test's own directory, unless a test says otherwise."""
    for name in ("NATS_URL", "CENTRAL_HUB_URL", "CONFIG_LEDGER_TOKEN", "LEDGER_STREAM", "LEDGER_SUBJECT_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONFIG_LEDGER_LKG_DIR", str(tmp_path / "lkg"))


def use_stream(monkeypatch: pytest.MonkeyPatch, settings: LedgerSettings) -> None:
    monkeypatch.setenv("NATS_URL", settings.nats_url)
    monkeypatch.setenv("LEDGER_STREAM", settings.stream)
    monkeypatch.setenv("LEDGER_SUBJECT_PREFIX", settings.subject_prefix)


# ------------------------------------------------------------------------------------------------
# Pattern 1, verbatim from the reference document except the import line.
# ------------------------------------------------------------------------------------------------
import os  # noqa: E402

from client import ConfigClient  # noqa: E402


class ServiceConfig:
    """
    Complete service configuration following 3-layer hierarchy
    """

    def __init__(self):
        # === LAYER 1: CRITICAL CONFIGS (ENV VARS) ===
        self.polygon_api_key = os.getenv("POLYGON_API_KEY")
        self.clickhouse_host = os.getenv("CLICKHOUSE_HOST")
        self.clickhouse_password = os.getenv("CLICKHOUSE_PASSWORD")

        # Validate critical configs
        if not self.polygon_api_key:
            raise ValueError("POLYGON_API_KEY not set")

        # === LAYER 2: OPERATIONAL CONFIGS (CENTRAL HUB) ===
        self._config_client = ConfigClient(
            service_name="polygon-historical-downloader",
            central_hub_url=os.getenv("CENTRAL_HUB_URL", "http://suho-central-hub:7000"),
            safe_defaults=self._get_safe_defaults(),
            cache_ttl_seconds=300,
            enable_nats_updates=True
        )

        self._operational_config = None

    def _get_safe_defaults(self) -> dict:
        """
        LAYER 3: Safe fallback configuration
        CRITICAL: Service MUST work with these defaults!
        """
        return {
            "operational": {
                "batch_size": 100,
                "max_retries": 3,
                "gap_check_interval_hours": 1
            },
            "features": {
                "enable_verification": True,
                "enable_auto_backfill": True
            }
        }

    async def init_async(self):
        """Async init - fetch operational config"""
        await self._config_client.init_async()
        self._operational_config = await self._config_client.get_config()

        # Register hot-reload callback
        def on_update(new_config):
            self._operational_config = new_config
            print("✅ Config hot-reloaded!")

        self._config_client.on_config_update(on_update)

    async def shutdown(self):
        """Cleanup"""
        await self._config_client.shutdown()

    # === CONFIG PROPERTIES ===

    @property
    def batch_size(self) -> int:
        """Get batch size from operational config"""
        return self._operational_config.get('operational', {}).get('batch_size', 100)

    @property
    def gap_check_interval_hours(self) -> int:
        """Get gap check interval from operational config"""
        return self._operational_config.get('operational', {}).get('gap_check_interval_hours', 1)
# ------------------------------------------------------------------------------------------------


class MyService:
    """Stand-in for the reference's ``MyService``: changes the config as an admin would and
    waits for the hot reload to reach the ``ServiceConfig`` it was given."""

    admin_update = None  # set by the test: an async callable that changes the config

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.seen: list[int] = []

    async def start(self) -> None:
        self.seen.append(self.config.batch_size)
        await type(self).admin_update()
        await wait_for(lambda: self.config.batch_size == 200, timeout=5, what="hot reload")
        self.seen.append(self.config.batch_size)


# "Usage in Service", verbatim.
async def main():
    # 1. Create config (loads ENV VARS)
    config = ServiceConfig()

    # 2. Async init (fetch from Central Hub)
    await config.init_async()

    # 3. Use config
    print(f"API Key: {config.polygon_api_key[:10]}...")
    print(f"Batch size: {config.batch_size}")
    print(f"Gap interval: {config.gap_check_interval_hours} hours")

    # 4. Start service with centralized config
    service = MyService(config)
    await service.start()

    # Config auto-reloads if admin updates in Central Hub!

    # 5. Cleanup
    await config.shutdown()


async def test_service_config_pattern_from_the_stream(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, provisioned: LedgerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "pk_test_1234567890abcdef")
    monkeypatch.setenv("CENTRAL_HUB_URL", "http://127.0.0.1:9")  # never asked: the stream answers
    use_stream(monkeypatch, provisioned)
    await ledger.append(
        SERVICE, Replace({"operational": {"batch_size": 150, "gap_check_interval_hours": 2}}), actor="ops"
    )

    async def admin_update() -> None:
        await ledger.append(SERVICE, Patch({"operational": {"batch_size": 200}}), actor="admin")

    monkeypatch.setattr(MyService, "admin_update", staticmethod(admin_update))
    await main()
    out = capsys.readouterr().out
    assert "API Key: pk_test_12..." in out
    assert "Batch size: 150" in out and "Gap interval: 2 hours" in out
    assert "✅ Config hot-reloaded!" in out


async def test_service_config_pattern_properties_and_source(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, provisioned: LedgerSettings
) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "pk_test")
    use_stream(monkeypatch, provisioned)
    await ledger.append(SERVICE, Replace({"operational": {"batch_size": 150}}), actor="ops")
    config = ServiceConfig()
    await config.init_async()
    try:
        assert (config.batch_size, config.gap_check_interval_hours) == (150, 1)
        assert config._config_client.source == "stream"
        await ledger.append(SERVICE, Patch({"operational": {"batch_size": 175}}), actor="admin")
        await wait_for(lambda: config.batch_size == 175, timeout=5, what="hot reload")
    finally:
        await config.shutdown()


async def test_service_config_pattern_over_http(
    monkeypatch: pytest.MonkeyPatch, hub: HubContractFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """No NATS configured: the HTTP API, and hot reload through its SSE watch."""
    monkeypatch.setenv("POLYGON_API_KEY", "pk_test_1234567890abcdef")
    monkeypatch.setenv("CENTRAL_HUB_URL", hub.url)
    hub.set(SERVICE, {"operational": {"batch_size": 150, "gap_check_interval_hours": 2}})

    async def admin_update() -> None:
        hub.set(SERVICE, {"operational": {"batch_size": 200, "gap_check_interval_hours": 2}})

    monkeypatch.setattr(MyService, "admin_update", staticmethod(admin_update))
    await main()
    out = capsys.readouterr().out
    assert "Batch size: 150" in out and "✅ Config hot-reloaded!" in out


def test_service_config_pattern_requires_the_secret_in_the_environment() -> None:
    with pytest.raises(ValueError, match="POLYGON_API_KEY not set"):
        ServiceConfig()


async def test_example_usage_snippet(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, provisioned: LedgerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    use_stream(monkeypatch, provisioned)
    await ledger.append(
        SERVICE, Replace({"operational": {"batch_size": 100, "gap_check_interval_hours": 1}}), actor="ops"
    )
    # --- verbatim: "ConfigClient" / "Example Usage", steps 1-5 ---
    # 1. Initialize with safe defaults
    config_client = ConfigClient(
        service_name="polygon-historical-downloader",
        central_hub_url="http://suho-central-hub:7000",
        safe_defaults={
            "operational": {
                "batch_size": 100,
                "gap_check_interval_hours": 1
            }
        },
        enable_nats_updates=True  # Enable hot-reload
    )

    # 2. Async init (fetch initial config)
    await config_client.init_async()

    # 3. Get config (uses cache if valid)
    config = await config_client.get_config()
    batch_size = config['operational']['batch_size']

    # 4. Force refresh (ignore cache)
    config = await config_client.get_config(force_refresh=True)

    # 5. Register callback for updates
    def on_config_update(new_config):
        print(f"Config updated! New batch_size: {new_config['operational']['batch_size']}")

    config_client.on_config_update(on_config_update)
    # --- end of steps 1-5 ---
    assert batch_size == 100 and config_client.source == "stream"
    await ledger.append(SERVICE, Patch({"operational": {"batch_size": 200}}), actor="admin")
    await wait_for(
        lambda: "Config updated! New batch_size: 200" in capsys.readouterr().out, timeout=5, what="callback"
    )
    # --- verbatim, step 6 ---
    # 6. Cleanup
    await config_client.shutdown()


async def test_api_reference_get_value_is_synchronous(ledger: Ledger, monkeypatch, provisioned) -> None:
    use_stream(monkeypatch, provisioned)
    await ledger.append("my-service", Replace({"operational": {"batch_size": 42}}), actor="ops")
    client = ConfigClient("my-service")
    await client.init_async()
    try:
        # "API Reference": batch_size = client.get_value("operational.batch_size", default=100)
        batch_size = client.get_value("operational.batch_size", default=100)
        assert batch_size == 42
        assert client.get_value("operational.missing", default=100) == 100
    finally:
        await client.shutdown()


# "4. Test Fallback Scenarios", verbatim (pytest collects it as a test of its own).
async def test_fallback():
    client = ConfigClient(
        service_name="test-service",
        central_hub_url="http://invalid-url:9999",  # Hub down
        safe_defaults={"operational": {"batch_size": 100}}
    )

    config = await client.get_config()
    assert config['operational']['batch_size'] == 100  # Uses defaults


async def test_fallback_is_fast_and_says_defaults() -> None:
    started = time.monotonic()
    await test_fallback()
    assert time.monotonic() - started < 1.0
    client = ConfigClient(service_name="test-service", central_hub_url="http://invalid-url:9999",
                          safe_defaults={"operational": {"batch_size": 100}})
    await client.get_config()
    assert (client.source, client.version) == ("defaults", None)
