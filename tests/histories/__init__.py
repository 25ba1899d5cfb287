"""Realistic migration histories in other tools' layouts, written the way those tools' users write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.histories import (
    dbmate_bookings,
    diesel_registry,
    drizzle_helpdesk,
    flyway_billing,
    golang_migrate_fleet,
    prisma_scheduling,
)

# each layout's history: ``WRITERS[layout](directory)`` writes it and returns its migrations directory
WRITERS: dict[str, Callable[[Path], Path]] = {
    "flyway": flyway_billing.write,
    "diesel": diesel_registry.write,
    "prisma": prisma_scheduling.write,
    "drizzle": drizzle_helpdesk.write,
    "golang-migrate": golang_migrate_fleet.write,
    "dbmate": dbmate_bookings.write,
}
