"""How the database commands print: the info table and its state counts, the plan, the refusals, the
progress of an apply, JSON.  Progress and tables go to stdout."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeAlias

from executor.errors import MigrationRefused, SchemagateError
from schemagate.console import out
from schemagate.tables import render_table

if TYPE_CHECKING:
    from executor.apply import Event, Plan
    from executor.index_validity import IndexRow
    from executor.manifest import ManifestEntry
    from executor.state import MigrationInfo

# what ``--json`` prints: a JSON document made of the executor's plain data
JSON: TypeAlias = "dict[str, JSON] | list[JSON] | str | int | float | bool | None"


def _jsonable(value: object) -> JSON:
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return _jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _ms(value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{round(value)} ms"


def info_rows(infos: list[MigrationInfo]) -> list[list[str]]:
    rows = []
    for i in infos:
        installed = i.installed_on.strftime("%Y-%m-%d %H:%M:%S") if i.installed_on else ""
        state = i.state.value
        rows.append([i.version or "", i.description, i.kind, state, installed, _ms(i.execution_time_ms)])
    return rows


def info_table(infos: list[MigrationInfo]) -> str:
    if not infos:
        return "(no migrations in the bundle and none recorded in the database)"
    headers = ["Version", "Description", "Kind", "State", "Installed on", "Time"]
    return render_table(headers, info_rows(infos), right=["Time"])


def state_counts(infos: list[MigrationInfo]) -> str:
    counts: dict[str, int] = {}
    for i in infos:
        counts[i.state.value] = counts.get(i.state.value, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "nothing"


def invalid_index_lines(
    invalid: list[tuple[IndexRow, str | None]], infos: list[MigrationInfo], *, with_migrations: bool = True
) -> list[str]:
    """What ``info`` says about INVALID indexes (left by an interrupted or failed concurrent build)."""
    states = {i.file: i.state.value for i in infos}
    count = f"{len(invalid)} INVALID {'index' if len(invalid) == 1 else 'indexes'}"
    lines = [
        f"{count} (left by an interrupted or failed concurrent build: not used by queries, still updated on "
        "every write):"
    ]
    for row, owner in invalid:
        where = f"  {row.qualified} on {row.qualified_table}: "
        if owner is None and not with_migrations:
            lines.append(where + "(pass --migrations DIR or --bundle DIR to see which migration built it)")
        elif owner is None:
            lines.append(where + "built by no recorded migration")
        else:
            lines.append(where + f"{owner} ({states.get(owner, 'recorded')}) should have built it")
    example = next((row for row, owner in invalid if owner is not None), invalid[0][0])
    lines.append(
        f"remedy: rebuild one in place with REINDEX INDEX CONCURRENTLY {example.qualified}, or drop it with "
        "DROP INDEX CONCURRENTLY (a pending or failed migration that builds it then builds it again)"
    )
    return lines


def describe_plan(plan: Plan, *, limit: int | None = None) -> str:
    """One line per migration to apply; with ``limit``, a long plan shows its head and tail."""
    items = plan.to_apply
    width = max((len(entry.file) for entry, _ in items), default=0)
    lines = [f"  {entry.file.ljust(width)}  ({why}{_how(entry)})" for entry, why in items]
    if limit is not None and len(lines) > limit:
        keep = limit // 2
        hidden = len(lines) - 2 * keep
        lines = [*lines[:keep], f"  ... {hidden} more (`schemagate plan` lists them all) ...", *lines[-keep:]]
    return "\n".join(lines)


def _how(entry: ManifestEntry) -> str:
    if entry.own_transactions:
        return "; runs as written: accepted history with BEGIN and COMMIT of its own"
    return "" if entry.transactional else "; runs outside a transaction"


def refusal_error(refusals: list[SchemagateError]) -> SchemagateError:
    """One refusal as it is; several as one MigrationRefused listing each with its remedy."""
    if len(refusals) == 1:
        return refusals[0]
    text = "\n".join(f"  - {r}".replace("\n", "\n    ") for r in refusals)
    return MigrationRefused(
        f"{len(refusals)} refusals; nothing was applied:\n{text}",
        remedy="fix each refusal above as its remedy says, then run again (`schemagate info` shows all)",
        context={"refusals": [r.to_dict() for r in refusals if hasattr(r, "to_dict")]},
    )


def applied_count(infos: list[MigrationInfo]) -> int:
    """How many are applied as the bundle has them (the "N applied" of an up-to-date database)."""
    from executor.state import MigrationState  # psycopg2 with it: not before a command runs

    return sum(1 for i in infos if i.state is MigrationState.APPLIED)


class Progress:
    """Prints the executor's events (``on_event`` of ``executor.apply.apply``) as they happen.

    On a terminal, one line shows the migration being applied, its number and its elapsed time
    while it runs (``[3/40] V003__add_index.sql 12.4 s``); otherwise its name is written when it
    starts and its duration ends the line.  Either way each migration leaves one line with its
    duration; the server's notices of a migration are printed under it (they arrive while it runs).
    """

    def __init__(self, width: int = 0, total: int = 0) -> None:
        from schemagate.console import ProgressLine

        self.width = width  # file names are padded to this, so the durations line up
        self.line = ProgressLine(total, width=width)
        self.notices: list[str] = []

    def expect(self, width: int, total: int) -> None:
        """The run's migrations are known now (the plan): ``total`` of them, names up to ``width``."""
        self.width = self.line.width = width
        self.line.total = total

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "notice":
            self.notices.append(event.message)
            return
        if kind == "start":
            self.notices = []
            self.line.start(event.file or "")  # a start event always names its file
        elif kind == "applied":
            self.line.finish(f"{_ms(event.duration_ms):>7}")
            self._flush()
        elif kind == "failed":
            self.line.finish(f"FAILED after {_ms(event.duration_ms)}")
            self._flush()
        elif kind == "lock_acquired":
            if event.duration_ms and event.duration_ms >= 1000:
                self._say(f"  lock acquired after {_ms(event.duration_ms)}")
        elif kind in ("waiting_for_lock", "retry", "stopped", "invalid_index_dropped"):
            self._say(f"  {event.message}")

    def _say(self, text: str) -> None:
        self.line.interrupt()
        out(text)
        self.line.resume()

    def _flush(self) -> None:
        for notice in self.notices:
            out(f"      {notice}")
        self.notices = []

    def close(self) -> None:
        self.line.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_json(data: object) -> None:
    out(json.dumps(_jsonable(data), indent=2, sort_keys=False))
