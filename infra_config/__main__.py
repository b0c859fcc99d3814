"""``python -m infra_config``: see :mod:`infra_config.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
