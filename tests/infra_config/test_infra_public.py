"""The package's public surface."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import infra_config
from infra_config import (
    ConfigFileError,
    ConfigNotLoadedError,
    ConfigUsageError,
    ConfigValidationError,
    InfraConfigError,
    KeyNotFoundError,
    MissingVariableError,
)

PACKAGE_DIR = Path(infra_config.__file__).parent


def test_all_names_exist_and_are_unique():
    assert len(set(infra_config.__all__)) == len(infra_config.__all__)
    for name in infra_config.__all__:
        assert hasattr(infra_config, name), name


@pytest.mark.parametrize(
    "module", [m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if m.name != "__main__"]
)
def test_every_module_declares_all(module):
    mod = importlib.import_module(f"infra_config.{module}")
    assert isinstance(mod.__all__, list)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_py_typed_marker():
    assert (PACKAGE_DIR / "py.typed").is_file()


def test_one_error_hierarchy():
    for cls in (
        ConfigFileError,
        ConfigValidationError,
        MissingVariableError,
        ConfigUsageError,
        KeyNotFoundError,
        ConfigNotLoadedError,
    ):
        assert issubclass(cls, InfraConfigError)
    assert issubclass(KeyNotFoundError, LookupError)
    assert issubclass(MissingVariableError, LookupError)
    assert issubclass(ConfigValidationError, ValueError)


def test_no_environment_read_at_import():
    # Import the dependencies first, then spy on os.environ while importing the package.
    script = textwrap.dedent(
        """
        import os, sys, asyncio, argparse, json, logging, pydantic, yaml
        reads = []
        def note(key):
            # record reads made by our package (third-party imports may read, e.g. pydantic)
            caller = sys._getframe(2).f_globals.get("__name__", "")
            if caller.startswith("infra_config"):
                reads.append((caller, key))
        class Spy(dict):
            def __getitem__(self, key):
                note(key); return super().__getitem__(key)
            def get(self, key, default=None):
                note(key); return super().get(key, default)
            def __contains__(self, key):
                note(key); return super().__contains__(key)
            def __iter__(self):
                note("<iter>"); return super().__iter__()
        os.environ = Spy(os.environ)
        import infra_config, infra_config.cli
        print(reads)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=15,
        env={**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)},
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
