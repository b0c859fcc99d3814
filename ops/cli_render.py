"""How the CLI shows things: rich tables and colour for people, plain JSON for scripts.

``Output`` is built once per invocation by ``ops.cli.main`` from the real (or a test's)
streams. Human output goes through rich, which drops colour when stdout is not a terminal;
``--json`` output is written as-is (indented documents, or one line per event when streaming).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Any

import orjson
from rich.console import Console
from rich.json import JSON
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = ["Output", "compact_json", "short_time"]


def compact_json(value: Any, limit: int | None = None) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def short_time(value: Any) -> str:
    """``2026-11-28T10:30:45.123456Z`` -> ``2026-11-28 10:30:45Z`` for tables."""
    if not isinstance(value, str) or "T" not in value:
        return "" if value is None else str(value)
    date, _, rest = value.partition("T")
    return f"{date} {rest[:8]}Z"


class Output:
    """The invocation's stdout/stderr, in human or JSON mode."""

    def __init__(self, stdout: IO[str], stderr: IO[str], *, json_mode: bool = False,
                 color: bool | None = None, width: int | None = None) -> None:
        self.json_mode = json_mode
        no_color = color is False
        self.console = Console(file=stdout, highlight=False, no_color=no_color, soft_wrap=True, width=width)
        self.err = Console(file=stderr, highlight=False, no_color=no_color, soft_wrap=True, width=width)
        self._stdout = stdout

    @property
    def stdout(self) -> IO[str]:
        return self._stdout

    # --- scripts ---------------------------------------------------------------------------

    def emit_json(self, value: Any, *, line: bool = False) -> None:
        """A JSON document (indented) or, with ``line``, one compact line (streams)."""
        option = orjson.OPT_SORT_KEYS if line else orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
        self._stdout.write(orjson.dumps(value, option=option).decode() + "\n")
        self._stdout.flush()

    # --- people ----------------------------------------------------------------------------

    def print(self, text: str = "", *, style: str | None = None) -> None:
        self.console.print(text, style=style)
        self._stdout.flush()

    def line(self, text: str) -> None:
        """A line of plain text (no markup interpretation), flushed: for streams like watch."""
        self.console.print(escape(text), soft_wrap=True)
        self._stdout.flush()

    def document(self, value: Any) -> None:
        self.console.print(JSON.from_data(value, indent=2, sort_keys=True))

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              *, styles: Sequence[str | None] | None = None, wrap: Sequence[str] = ()) -> None:
        """A table; only the columns named in ``wrap`` may wrap (the others keep one line)."""
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for i, name in enumerate(columns):
            style = styles[i] if styles and i < len(styles) else None
            table.add_column(name, style=style, overflow="fold", no_wrap=name not in wrap)
        for row in rows:
            table.add_row(*(cell if isinstance(cell, Text) else escape("" if cell is None else str(cell))
                            for cell in row))
        self.console.print(table)

    # --- stderr ----------------------------------------------------------------------------

    def error(self, message: str) -> None:
        """One line on stderr: the first line of the message, prefixed ``error:``."""
        first = (message.strip().splitlines() or [""])[0]
        self.err.print(f"[bold red]error:[/] {escape(first)}", soft_wrap=True)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def note(self, message: str) -> None:
        self.err.print(f"[dim]{escape(message)}[/]", soft_wrap=True)
