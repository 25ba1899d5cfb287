"""Terminal output shared by the commands: plain text that reads the same without colour.

Severity is always in words (``error:``, ``warning:``); colour only adds emphasis, and only when the
stream is a terminal and neither ``NO_COLOR`` (https://no-color.org: any non-empty value) nor
``schemagate --no-color`` nor ``TERM=dumb`` says otherwise.  Without colour not one escape code is
written, so CI logs and files stay clean.

``ProgressLine`` shows what a long run is doing: on a terminal one line rewritten in place
(``[3/40] V003__add_index.sql 12.4 s``, the elapsed time ticking while the file runs); otherwise a
line per file, whose name is written when the file starts and whose duration ends the line, so a
log shows which file is running.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import click

    from executor.errors import SchemagateError

SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "ok": "green"}
_colour_disabled = False  # schemagate --no-color


def disable_colour(
    _ctx: click.Context | None = None, _param: click.Parameter | None = None, value: bool = True
) -> bool:
    """``--no-color`` (a click callback; also callable directly)."""
    global _colour_disabled
    if value:
        _colour_disabled = True
    return value


def reset_colour() -> None:
    """Forget ``--no-color`` (for a second command in the same process, e.g. tests)."""
    global _colour_disabled
    _colour_disabled = False


def _stream(err: bool) -> IO[str]:
    return sys.stderr if err else sys.stdout


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except Exception:  # a closed stream (ValueError), or one that cannot tell
        return False


def colour_enabled(stream: IO[str] | None = None) -> bool:
    if _colour_disabled or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream if stream is not None else sys.stdout)


def style(text: str, severity: str | None, *, err: bool = False, bold: bool = False) -> str:
    """``text`` coloured for ``severity`` where colour is on for that stream, else unchanged."""
    colour = SEVERITY_COLOURS.get(severity or "")
    if (colour is None and not bold) or not colour_enabled(_stream(err)):
        return text
    import click  # only to colour, on a terminal

    return click.style(text, fg=colour, bold=bold)


_ANSI_ESCAPE = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")  # what click.echo strips (click._compat._ansi_re)


def out(text: str = "", *, err: bool = False, color: bool | None = None) -> None:
    """One line to stdout (stderr with ``err``), as ``click.echo`` writes it: escape sequences
    removed unless ``color`` is true (None: kept on a terminal only), then flushed.  Without click,
    so that ``apply`` prints without importing it (``schemagate.cli.entry``)."""
    stream = _stream(err)
    if not (is_terminal(stream) if color is None else color):
        text = _ANSI_ESCAPE.sub("", text)
    line = text + "\n"
    try:
        stream.write(line)
    except UnicodeEncodeError:  # a stream whose encoding lacks a character (a server notice's): as "?"
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(line.encode(encoding, "replace").decode(encoding))
    stream.flush()


def echo(text: str, severity: str | None = None, *, err: bool = False) -> None:
    """One line; the severity word at its start (``error:``) coloured where colour is on."""
    word, sep, rest = text.partition(": ")
    if severity and sep and word.split(" ")[0] in SEVERITY_COLOURS:
        text = style(word, severity, err=err, bold=True) + sep + rest
    else:
        text = style(text, severity, err=err)
    out(text, err=err, color=colour_enabled(_stream(err)))


def render_error(exc: SchemagateError) -> int:
    """Print a refusal as every command does; its exit code."""
    echo(f"error: {exc}", "error", err=True)
    return exc.exit_code


def echo_lines(lines: list[tuple[str, str | None]], *, err: bool = False) -> None:
    for text, severity in lines:
        echo(text, severity, err=err)


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class ProgressLine:
    """``[n/N] name elapsed`` while something runs (see the module docstring).

    ``start(name)`` when an item begins, ``finish(suffix)`` when it ends (the item's final line);
    ``interrupt()`` before printing anything else while an item runs.  On a terminal a daemon
    thread rewrites the line every ``tick`` seconds so the elapsed time moves during a long
    statement.
    """

    def __init__(
        self,
        total: int,
        *,
        width: int = 0,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        tick: float = 0.5,
        indent: str = "  ",
    ) -> None:
        self.total = total
        self.width = width
        self.stream = stream if stream is not None else sys.stdout
        self.tty = (is_terminal(self.stream) and os.environ.get("TERM") != "dumb") if tty is None else tty
        self.tick = tick
        self.indent = indent
        self.count = 0
        self.name: str | None = None
        self.started = 0.0
        self.run_started = time.monotonic()
        self._open = False  # a non-terminal line is written up to the name, waiting for its end
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the caller calls ------------------------------------------------------------------

    def start(self, name: str) -> None:
        with self._lock:
            self._end_open_line()
            self.count += 1
            self.name = name
            self.started = time.monotonic()
            if self.tty:
                self._draw()
                self._ensure_ticker()
            else:
                self._write(f"{self.indent}{self._counter()}{name.ljust(self.width)}")
                self._open = True

    def finish(self, suffix: str) -> None:
        """The item's final line: ``  name  suffix``."""
        with self._lock:
            name = self.name or ""
            line = f"{self.indent}{name.ljust(self.width)}  {suffix}"
            if self.tty:
                self._write("\r\x1b[2K" + line + "\n")
            elif self._open:
                self._write(f"  {suffix}\n")
            else:
                self._write(line + "\n")
            self._open = False
            self.name = None

    def interrupt(self) -> None:
        """Make room for another line (a notice, a lock wait) while an item runs."""
        with self._lock:
            if self.tty and self.name is not None:
                self._write("\r\x1b[2K")
            self._end_open_line()

    def resume(self) -> None:
        with self._lock:
            if self.tty and self.name is not None:
                self._draw()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            if self.tty and self.name is not None:
                self._write("\r\x1b[2K")
            self._end_open_line()

    # -- internals ------------------------------------------------------------------------------

    def _counter(self) -> str:
        return f"[{self.count:>{len(str(self.total))}}/{self.total}] " if self.total else ""

    def _draw(self) -> None:
        elapsed = _elapsed(time.monotonic() - self.started)
        total = _elapsed(time.monotonic() - self.run_started)
        self._write(f"\r\x1b[2K{self.indent}{self._counter()}{self.name}  {elapsed} (run {total})")

    def _end_open_line(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _ensure_ticker(self) -> None:
        if self._thread is not None:
            return

        def tick() -> None:
            while not self._stop.wait(self.tick):
                with self._lock:
                    if self.name is not None:
                        self._draw()

        self._thread = threading.Thread(target=tick, name="schemagate-progress", daemon=True)
        self._thread.start()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
