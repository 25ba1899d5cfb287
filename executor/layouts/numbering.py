"""The next version of a history, written in the style of the highest one (``schemagate new``).

| existing (highest)          | next                                                        |
|-----------------------------|-------------------------------------------------------------|
| none                        | ``001``                                                     |
| ``042`` (padded)            | ``043`` (same width; ``999`` is followed by ``1000``)       |
| ``7``                       | ``8``                                                       |
| ``1.2`` / ``1_2``           | ``1.3`` / ``1_3``: the last part counts up, the release     |
|                             | stays (start a new one with ``--version 2.0``)              |
| ``2024_05_01_1200``,        | the current UTC time in the same layout (digits and         |
| ``20240501120000``          | separators); the next number if the clock is not ahead      |
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from executor.naming import Version, format_version_like

DEFAULT_FIRST_VERSION = "001"
_DATE_LAYOUTS = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def next_version(
    existing: list[Version], *, now: datetime | None = None, first: str = DEFAULT_FIRST_VERSION
) -> str:
    """The version after the highest of ``existing``, written in its style (see the module doc)."""
    if not existing:
        return first
    highest = max(existing)
    text = highest.text
    digits = re.sub(r"[._]", "", text)
    layout = _DATE_LAYOUTS.get(len(digits))
    if layout and _is_date(digits[:8]):
        stamp = (now or datetime.now(UTC)).strftime(layout)
        candidate = _with_separators_of(text, stamp)
        if Version.parse(candidate) > highest:
            return candidate
    if text.isdigit():
        return format_version_like(text, int(text) + 1)
    head, last = re.match(r"^(.*[._])(\d+)$", text).groups()  # type: ignore[union-attr]
    return head + str(int(last) + 1).zfill(len(last))


def next_timestamp(existing: list[Version], *, now: datetime) -> str:
    """A ``YYYYMMDDHHMMSS`` version after every existing one (Prisma, Diesel, dbmate style)."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    if existing and Version.parse(stamp) <= max(existing):
        return str(max(existing).parts[0] + 1) if len(max(existing).parts) == 1 else stamp
    return stamp


def _is_date(digits: str) -> bool:
    try:
        day = datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        return False
    return 1990 <= day.year <= 2200


def _with_separators_of(template: str, digits: str) -> str:
    """``digits`` with the separators of ``template`` at the same places."""
    out, i = [], 0
    for ch in template:
        if ch in "._":
            out.append(ch)
        else:
            out.append(digits[i])
            i += 1
    return "".join(out)


__all__ = ["DEFAULT_FIRST_VERSION", "UTC", "next_timestamp", "next_version"]
