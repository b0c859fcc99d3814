"""How the CLI shows things: rich tables for people, plain tab-separated lines when piped.

``Output`` is built once per invocation by ``ops.cli.main`` from the real (or a test's)
streams. On a terminal (or with ``-o table``), tables are rich tables that fit the width,
wrapping values at spaces and commas, never inside a token. When stdout is not a terminal
(``| awk``, ``| cut``), tables are tab-separated lines without title or decoration, like gh
(headers only with ``-o tsv``, never with ``--no-headers``). ``--json`` / ``-o json`` output
is written as-is. Errors are one line on stderr, never a traceback.

rich is imported on first use: ``--help``, piped ``get`` and TSV never load it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Output", "compact_json", "short_time", "plain"]


def compact_json(value: Any, limit: int | None = None) -> str:
    """One-line JSON with a space after ``,`` and ``:`` (so a table can wrap between items)."""
    import json

    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def plain(value: Any) -> str:
    """A value for a plain line: strings bare, everything else JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def short_time(value: Any) -> str:
    """``2026-11-28T10:30:45.123456Z`` -> ``2026-11-28 10:30:45Z`` for tables."""
    if not isinstance(value, str) or "T" not in value:
        return "" if value is None else str(value)
    date, _, rest = value.partition("T")
    return f"{date} {rest[:8]}Z"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    """The invocation's stdout/stderr, in human, plain (piped) or JSON mode."""

    def __init__(self, stdout: IO[str], stderr: IO[str], *, json_mode: bool = False,
                 color: bool | None = None, width: int | None = None, fmt: str | None = None,
                 headers: bool = True) -> None:
        self.json_mode = json_mode or fmt == "json"
        self.format = fmt
        self.headers = headers
        self.terminal = _is_terminal(stdout)
        self._no_color = color is False
        self._width = width
        self._stdout, self._stderr = stdout, stderr
        self._console: Console | None = None
        self._err: Console | None = None

    @property
    def stdout(self) -> IO[str]:
        return self._stdout

    @property
    def human(self) -> bool:
        """Decorated output: a terminal, or ``-o table`` asked for it."""
        return self.format == "table" or (self.terminal and self.format is None)

    @property
    def width(self) -> int:
        if self._width:
            return self._width
        import shutil

        return shutil.get_terminal_size((80, 24)).columns

    def wrapped(self, text: str, *, indent: str = "", style: str | None = None) -> None:
        """A paragraph wrapped to the width at spaces, never inside a word (a path, a number)."""
        import textwrap

        lines = textwrap.wrap(text, self.width, initial_indent=indent, subsequent_indent=indent + "  ",
                              break_long_words=False, break_on_hyphens=False) or [indent]
        for line in lines:
            if self.human and style:
                from rich.markup import escape

                self.console.print(f"[{style}]{escape(line)}[/]", soft_wrap=True)
            else:
                self.write(line)

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self._stdout, highlight=False, no_color=self._no_color,
                                    soft_wrap=True, width=self._width)
        return self._console

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(file=self._stderr, highlight=False, no_color=self._no_color,
                                soft_wrap=True, width=self._width)
        return self._err

    # --- scripts ---------------------------------------------------------------------------

    def emit_json(self, value: Any, *, line: bool = False) -> None:
        """A JSON document (indented) or, with ``line``, one compact line (streams)."""
        option = orjson.OPT_SORT_KEYS if line else orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
        self._stdout.write(orjson.dumps(value, option=option).decode() + "\n")
        self._stdout.flush()

    def emit_yaml(self, value: Any) -> None:
        import yaml

        self._stdout.write(yaml.safe_dump(value, sort_keys=True, allow_unicode=True, default_flow_style=False))
        self._stdout.flush()

    def write(self, text: str) -> None:
        """Plain text as-is (``-o raw``)."""
        self._stdout.write(text if text.endswith("\n") else text + "\n")
        self._stdout.flush()

    # --- people ----------------------------------------------------------------------------

    def print(self, text: str = "", *, style: str | None = None) -> None:
        if not self.human:
            from rich.text import Text

            self.write(Text.from_markup(text).plain)
            return
        self.console.print(text, style=style)
        self._stdout.flush()

    def line(self, text: str) -> None:
        """A line of plain text (no markup interpretation), flushed: for streams like watch."""
        if not self.human:
            self.write(text)
            return
        from rich.markup import escape

        self.console.print(escape(text), soft_wrap=True)
        self._stdout.flush()

    def document(self, value: Any) -> None:
        if not self.human:
            self.emit_json(value)
            return
        from rich.json import JSON

        self.console.print(JSON.from_data(value, indent=2, sort_keys=True))

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              *, styles: Sequence[str | None] | None = None, wrap: Sequence[str] = (),
              ratios: dict[str, int] | None = None) -> None:
        """A table; only the columns named in ``wrap`` may wrap (the others keep one line);
        ``ratios`` shares the free width among the wrapping columns.

        Piped: tab-separated lines, no title (a header line only with ``-o tsv``)."""
        if not self.human:
            if self.format == "tsv" and self.headers:
                self.write("\t".join(columns))
            for row in rows:
                cells = ("" if cell is None else getattr(cell, "plain", cell) for cell in row)
                self._stdout.write("\t".join(str(c).replace("\t", " ").replace("\n", "; ") for c in cells) + "\n")
            self._stdout.flush()
            return
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        rows = [list(row) for row in rows]
        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False,
                      show_header=self.headers)
        for i, name in enumerate(columns):
            style = styles[i] if styles and i < len(styles) else None
            # A wrapping column is at least as wide as its longest word (capped), so values wrap
            # between words and never inside a path or a number; it takes its share of the rest.
            longest = max((len(w) for row in rows for w in str(row[i] or "").split()), default=0)
            table.add_column(name, style=style, overflow="fold", no_wrap=name not in wrap,
                             min_width=min(longest, 32) if name in wrap else None,
                             ratio=(ratios or {}).get(name))
        for row in rows:
            table.add_row(*(cell if isinstance(cell, Text) else escape("" if cell is None else str(cell))
                            for cell in row))
        self.console.print(table)

    # --- stderr ----------------------------------------------------------------------------

    def error(self, message: str) -> None:
        """One line on stderr: the first line of the message, prefixed ``error:``."""
        first = (message.strip().splitlines() or [""])[0]
        self._plain_err("error: ", first, "bold red")

    def warn(self, message: str) -> None:
        self._plain_err("warning: ", message, "yellow")

    def note(self, message: str) -> None:
        self._plain_err("", message, "dim")

    def _plain_err(self, prefix: str, message: str, style: str) -> None:
        if self._no_color or not _is_terminal(self._stderr):
            self._stderr.write(f"{prefix}{message}\n")
            self._stderr.flush()
            return
        from rich.markup import escape

        label = f"[{style}]{prefix}[/]" if prefix else ""
        body = escape(message) if prefix else f"[{style}]{escape(message)}[/]"
        self.err.print(f"{label}{body}", soft_wrap=True)
