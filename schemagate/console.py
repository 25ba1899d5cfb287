"""Terminal output shared by the commands: colour by severity, on stderr for problems.

Colour only when the stream is a terminal (click strips it otherwise), so CI logs stay plain.
"""

from __future__ import annotations

import click

SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "ok": "green"}


def echo(text: str, severity: str | None = None, *, err: bool = False) -> None:
    """One line, coloured by ``severity`` ("error", "warning", "ok" or None)."""
    colour = SEVERITY_COLOURS.get(severity or "")
    click.secho(text, fg=colour, err=err)


def echo_lines(lines: list[tuple[str, str | None]], *, err: bool = False) -> None:
    for text, severity in lines:
        echo(text, severity, err=err)
