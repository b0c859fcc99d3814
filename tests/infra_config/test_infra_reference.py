"""The reference document's examples, verbatim except for the import line.

CONFIG_ARCHITECTURE.md: "Example Usage" under InfrastructureConfigManager, and
"Pattern 2: Central Hub Infrastructure Config". Neither passes a config_dir or environ, so
the tests run in a temporary working directory whose ./config holds the reference
infrastructure.yaml exactly as printed in the document.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(10)

# Verbatim from the "Configuration File (infrastructure.yaml)" block.
REFERENCE_INFRASTRUCTURE_YAML = """\
databases:
  postgresql:
    host: suho-postgresql
    port: 5432
    type: postgres
    health_check:
      method: tcp
      timeout: 5
      interval: 30
    critical: true

messaging:
  nats-1:
    host: nats-1
    port: 4222
    management_port: 8222
    health_check:
      method: http
      endpoint: /healthz
"""

# The example output also shows database and username, which the reference file lacks;
# they come from the service layer (central-hub.yaml), as the priority table describes.
CENTRAL_HUB_YAML = """\
databases:
  postgresql:
    database: suho_trading
    username: suho_admin
"""


@pytest.fixture
def reference_cwd(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.mkdir()
    (config / "infrastructure.yaml").write_text(REFERENCE_INFRASTRUCTURE_YAML)
    monkeypatch.chdir(tmp_path)
    return config


async def test_example_usage(reference_cwd, capsys):
    (reference_cwd / "central-hub.yaml").write_text(CENTRAL_HUB_YAML)

    # fmt: off
    # --- verbatim from "Example Usage" (import line changed) ---
    from infra_config import InfrastructureConfigManager

    # Initialize
    config = InfrastructureConfigManager(service_name="central-hub")
    await config.load_config()

    # Get database config
    db_config = await config.get_database_config()
    print(db_config)
    # {
    #   "host": "suho-postgresql",
    #   "port": 5432,
    #   "database": "suho_trading",
    #   "username": "suho_admin"
    # }

    # Get messaging config
    nats_config = await config.get("messaging.nats-1")
    print(nats_config)
    # {
    #   "host": "nats-1",
    #   "port": 4222,
    #   "management_port": 8222,
    #   "health_check": {...}
    # }
    # --- end of example ---
    # fmt: on

    assert {k: db_config[k] for k in ("host", "port", "database", "username")} == {
        "host": "suho-postgresql",
        "port": 5432,
        "database": "suho_trading",
        "username": "suho_admin",
    }
    assert nats_config == {
        "host": "nats-1",
        "port": 4222,
        "management_port": 8222,
        "health_check": {"method": "http", "endpoint": "/healthz"},
    }
    printed = capsys.readouterr().out
    assert "suho-postgresql" in printed and "nats-1" in printed


async def test_reference_file_loads_as_it_is(reference_cwd):
    from infra_config import InfrastructureConfigManager

    config = InfrastructureConfigManager(service_name="central-hub", environ={})
    await config.load_config()
    import yaml

    assert config.get_all() == yaml.safe_load(REFERENCE_INFRASTRUCTURE_YAML)
    assert config.files == ("config/infrastructure.yaml",)


async def test_pattern_2_central_hub_config(reference_cwd):
    # fmt: off
    # --- verbatim from "Pattern 2: Central Hub Infrastructure Config" (import changed) ---
    from infra_config import InfrastructureConfigManager

    class CentralHubConfig:
        """
        Central Hub's internal infrastructure configuration
        """

        def __init__(self):
            # Load infrastructure config from files
            self.infra_config = InfrastructureConfigManager(
                service_name="central-hub",
                environment="production"
            )

        async def init_async(self):
            """Load infrastructure configuration"""
            await self.infra_config.load_config()

        async def get_database_config(self, db_name: str) -> dict:
            """Get database configuration"""
            databases = await self.infra_config.get("databases", {})
            return databases.get(db_name, {})

        async def get_messaging_config(self, msg_name: str) -> dict:
            """Get messaging configuration"""
            messaging = await self.infra_config.get("messaging", {})
            return messaging.get(msg_name, {})
    # --- end of example ---
    # fmt: on

    (reference_cwd / "production.yaml").write_text("databases:\n  postgresql:\n    port: 6432\n")
    hub = CentralHubConfig()
    await hub.init_async()
    postgres = await hub.get_database_config("postgresql")
    assert postgres["host"] == "suho-postgresql"
    assert postgres["port"] == 6432  # production.yaml (50) over infrastructure.yaml (10)
    assert postgres["health_check"] == {"method": "tcp", "timeout": 5, "interval": 30}
    assert await hub.get_database_config("clickhouse") == {}
    nats = await hub.get_messaging_config("nats-1")
    assert nats["management_port"] == 8222
    assert await hub.get_messaging_config("kafka") == {}
