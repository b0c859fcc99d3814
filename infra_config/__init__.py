"""Infrastructure configuration: layered YAML/JSON files plus environment, with provenance.

::

    from infra_config import InfrastructureConfigManager

    config = InfrastructureConfigManager(service_name="central-hub", environment="production")
    await config.load_config()
    db = await config.get_database_config()                 # databases.postgresql
    nats = await config.get("messaging.nats-1")
    print(config.explain("databases.postgresql.port"))      # which file:line or variable

Layers, lowest priority first, in ``config_dir`` (default ``$INFRA_CONFIG_DIR``, else
``./config``):

- ``default.{yaml,yml,json}`` then ``infrastructure.yaml`` — priority 10
- ``<service_name>.{yaml,yml,json}`` — priority 40
- ``<environment>.{yaml,yml,json}`` — priority 50
- environment variables ``INFRA__SECTION__KEY=value`` — priority 100
  (``INFRA__DATABASES__POSTGRESQL__PORT=5433`` sets ``databases.postgresql.port``;
  ``__`` nests, parts are lower-cased, values are read as YAML scalars)

Mappings merge key by key; lists and scalars replace. File values may use ``${VAR}`` and
``${VAR:-default}`` so secrets stay in the environment. Secrets are shown as ``***`` in
``repr``, logs, :meth:`~InfrastructureConfigManager.explain` and the CLI
(``python -m infra_config show | get KEY | explain KEY``).

Config Ledger's own processes read their settings through this manager too
(:mod:`infra_config.settings`: a table of ``Setting`` rows as extra layers — built-in defaults
below the files, plain variables such as ``API_PORT`` above them, explicit values on top).
"""

from .errors import (
    ConfigFileError,
    ConfigNotLoadedError,
    ConfigUsageError,
    ConfigValidationError,
    InfraConfigError,
    KeyNotFoundError,
    MissingVariableError,
)
from .explain import Explanation, Overridden
from .manager import CONFIG_DIR_VARIABLE, InfrastructureConfigManager
from .merge import Contribution, Merged, merge_layers
from .models import (
    AlertRule,
    CacheConfig,
    DatabaseConfig,
    DependencySpec,
    Endpoint,
    HealthCheck,
    InfrastructureConfig,
    MessagingConfig,
)
from .redact import MASK, is_secret_key, redact
from .source import KeyPath, Layer, Source
from .watch import ConfigWatcher

__all__ = [
    "CONFIG_DIR_VARIABLE",
    "MASK",
    "AlertRule",
    "CacheConfig",
    "ConfigFileError",
    "ConfigNotLoadedError",
    "ConfigUsageError",
    "ConfigValidationError",
    "ConfigWatcher",
    "Contribution",
    "DatabaseConfig",
    "DependencySpec",
    "Endpoint",
    "Explanation",
    "HealthCheck",
    "InfraConfigError",
    "InfrastructureConfig",
    "InfrastructureConfigManager",
    "KeyNotFoundError",
    "KeyPath",
    "Layer",
    "Merged",
    "MessagingConfig",
    "MissingVariableError",
    "Overridden",
    "Source",
    "is_secret_key",
    "merge_layers",
    "redact",
]
