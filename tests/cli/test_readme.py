"""The README is executable documentation: its commands parse, its snippet compiles, its
configuration reference names every variable the settings models read, its exit codes are the
CLI's."""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

import pytest

from client.settings import ClientSettings
from ledger.settings import LedgerSettings
from ops.cli import build_parser
from ops.cli_exit import ExitCode
from ops.embedded import REPO_ROOT
from ops.stack import StackSettings

README = (REPO_ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_two_commands_and_the_venv_activation_come_first() -> None:
    lines = code_blocks("sh")[0].splitlines()
    assert lines[0].startswith("make run")
    assert lines[1].startswith("source .venv/bin/activate")  # before any `config-ledger` or `python`
    assert lines[2].startswith("make test")
    assert README.index("make run") < README.index("## ")
    assert README.index("source .venv/bin/activate") < README.index("config-ledger ")


def test_the_quickstart_compiles_and_uses_the_reference_api() -> None:
    snippet, audit = code_blocks("python")
    ast.parse(snippet)
    assert len(snippet.strip().splitlines()) <= 16
    for name in ("ConfigClient", "on_config_update", "asyncio.run(main())"):
        assert name in snippet
    ast.parse(audit)
    for name in ("from client import AuditReader", "audit.verify()", "audit.state_at("):
        assert name in audit


def test_no_command_is_shown_with_a_venv_path() -> None:
    """One name for the CLI everywhere (the venv is activated once, at the top)."""
    assert ".venv/bin/config-ledger" not in README


def cli_lines() -> list[str]:
    """Every `config-ledger ...` command shown in a code block or inline code."""
    found = []
    for block in code_blocks("sh"):
        found += [line.strip() for line in block.splitlines() if line.strip().startswith("config-ledger ")]
    found += [m for m in re.findall(r"`(config-ledger [^`…]+)`", README) if "|" not in m]
    return found


@pytest.mark.parametrize("line", cli_lines())
def test_every_command_the_readme_shows_parses(line: str) -> None:
    argv = shlex.split(line.split("#")[0].split(" | ")[0])[1:]
    if "--help" in argv or "--version" in argv:
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(argv)
        assert done.value.code == 0
    else:
        build_parser().parse_args(argv)


def test_every_subcommand_is_in_the_readme() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"| `{name}" in README, f"`{name}` missing from the CLI table"


def test_exit_codes_match_the_cli() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| ", README, flags=re.M), code


def test_the_configuration_reference_names_every_variable() -> None:
    from api.settings import ApiSettings
    from projector.settings import ProjectorSettings

    models: list[Any] = [LedgerSettings, ApiSettings, ProjectorSettings, ClientSettings, StackSettings]
    missing = {s.env for model in models for s in model.settings() if f"`{s.env}`" not in README}
    assert not missing, f"README's configuration reference lacks {sorted(missing)}"
