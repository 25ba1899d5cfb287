"""The rehearsal's locks as a Mermaid gantt chart in report.md (GitHub and GitLab draw it in the
PR comment), with the same bars as a table below it for renderers that show no Mermaid.

One ``section`` per migration that locked a table that existed before it; one bar per (table,
lock mode) from the first to the last time the rehearsal saw it (``RehearsedMigration.lock_spans``,
ms since the first new migration started), labelled with what the lock blocks (the manual's
conflict table, ``locks.what_it_blocks``).  Locks that block writes (SHARE and stronger) are
``crit`` (red).  Tables a migration created are left out: nobody else can see them yet.

The Mermaid text keeps to what Mermaid has parsed since version 9: ``dateFormat x`` (the times
are ms since the epoch, so 0 is the first migration's start), ``axisFormat %Q ms`` or ``%s s``
(ms or seconds since the epoch: the same in every viewer's time zone, unlike ``%M:%S``),
``todayMarker off``, no ``tickInterval``.  Task and section names may not hold ``: ; # %``
(and a name starting with a keyword such as ``gantt`` or ``title`` would be read as one), so
such characters are written as Mermaid entity codes (``#58;``), which the renderer shows as the
character itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from validator.rehearsal.locks import LOCK_MODES, LockSpan, mode_label
from validator.rehearsal.outcome import RehearsedMigration

MAX_BARS = 40  # bars in the chart (and rows in its table); the longest and strongest are kept
MIN_WIDTH = 0.01  # a bar is drawn at least this fraction of the chart's width
SECONDS_FROM_MS = 10_000  # from this many ms on, the axis is in seconds

_STRENGTH = {mode_label(m): rank for rank, m in enumerate(LOCK_MODES)}
_WRITE_BLOCKING = _STRENGTH["SHARE"]
# characters Mermaid's gantt lexer reads as syntax (or that would end the Markdown fence)
_SPECIAL = frozenset(":;#%<>`\\")
# what Mermaid's gantt lexer takes for a statement when a line starts with it
_KEYWORD = re.compile(
    r"(gantt|dateformat|inclusiveenddates|topaxis|axisformat|tickinterval|includes|excludes"
    r"|todaymarker|weekday|weekend|title|accdescription|acctitle|accdescr|section|click|call"
    r"|href|displaymode|\d{4}-\d\d-\d\d)",
    re.IGNORECASE,
)


def escape(text: str) -> str:
    """``text`` as a Mermaid gantt task or section name shows it: ``weird:name#1`` ->
    ``weird#58;name#35;1``."""
    out = "".join(f"#{ord(c)};" if c in _SPECIAL or ord(c) < 32 else c for c in text)
    if _KEYWORD.match(out):
        out = f"#{ord(out[0])};{out[1:]}"
    return out


@dataclass(frozen=True)
class Bar:
    file: str
    span: LockSpan

    @property
    def crit(self) -> bool:
        return _STRENGTH.get(self.span.mode, 0) >= _WRITE_BLOCKING

    @property
    def held_ms(self) -> int:
        return self.span.end_ms - self.span.start_ms

    @property
    def label(self) -> str:
        return f"{self.span.relation} {self.span.mode} ({self.span.blocks})"


def bars(migrations: Sequence[RehearsedMigration]) -> list[Bar]:
    """Every lock on a table that existed before, in application order."""
    return [Bar(m.file, sp) for m in migrations for sp in m.lock_spans if sp.on_existing_table]


def chosen(all_bars: list[Bar], limit: int = MAX_BARS) -> list[Bar]:
    """At most ``limit`` bars, in their order: write-blocking first, then the longest, the strongest."""
    if len(all_bars) <= limit:
        return all_bars
    ranked = sorted(
        range(len(all_bars)),
        key=lambda i: (not all_bars[i].crit, -all_bars[i].held_ms, -_STRENGTH.get(all_bars[i].span.mode, 0)),
    )
    keep = set(ranked[:limit])
    return [b for i, b in enumerate(all_bars) if i in keep]


def _duration(ms: int) -> str:
    if ms < 1:
        return "< 1 ms"
    return f"{ms} ms" if ms < SECONDS_FROM_MS else f"{ms / 1000:.1f} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(migrations: Sequence[RehearsedMigration], limit: int = MAX_BARS) -> list[str]:
    """The "Locks over time" part of the Rehearsal section (no lines when no migration locked a
    table that existed before it)."""
    every = bars(migrations)
    if not every:
        return []
    shown = chosen(every, limit)
    ends = [m.ended_ms for m in migrations if m.ended_ms is not None] + [b.span.end_ms for b in every]
    axis_end = max(1, *ends)
    width = max(1, math.ceil(axis_end * MIN_WIDTH))
    in_seconds = axis_end >= SECONDS_FROM_MS
    unit = "s" if in_seconds else "ms"
    lines = [
        "#### Locks over time",
        "",
        "```mermaid",
        "gantt",
        f"    title Locks on existing tables, {unit} since the first new migration started",
        "    dateFormat x",
        f"    axisFormat {'%s s' if in_seconds else '%Q ms'}",
        "    todayMarker off",
    ]
    section = None
    for b in shown:
        if b.file != section:
            section = b.file
            lines.append(f"    section {escape(b.file)}")
        start, end = b.span.start_ms, max(b.span.end_ms, b.span.start_ms + width)
        if end > axis_end:  # a short lock at the very end: widen it to the left
            start, end = max(0, axis_end - width), axis_end
        tag = "crit, " if b.crit else ""
        lines.append(f"    {escape(b.label)} :{tag}{start}, {end}")
    lines += ["```", ""]
    note = (
        "Red bars block writes (SHARE and stronger). A bar runs from the first to the last time the "
        f"rehearsal saw the lock; bars are drawn at least {width} ms wide. Tables a migration "
        "created are left out: nobody else can see them yet."
    )
    if len(shown) < len(every):
        note += (
            f" {len(every) - len(shown)} more lock(s) on existing tables (shorter ones that block no "
            "writes first) are left out here; report.json has every one (`lock_spans`)."
        )
    lines += [
        note,
        "",
        "| migration | table | lock | from | held | blocks |",
        "|---|---|---|---:|---:|---|",
    ]
    for b in shown:
        cells = (
            f"`{b.file}`",
            f"`{b.span.relation}`",
            b.span.mode,
            _duration(b.span.start_ms) if b.span.start_ms else "0 ms",
            _duration(b.held_ms),
            b.span.blocks,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    return lines
