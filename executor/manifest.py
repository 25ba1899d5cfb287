"""The bundle manifest (README.md "Validating a pull request": the bundle), format 1.

``bundle_sha256`` is the SHA-256 of the canonical JSON of every other key of the manifest except
``signature`` (the signature signs ``bundle_sha256`` and so cannot be covered by it).
Canonical JSON: keys sorted, no insignificant white space, UTF-8, no NaN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from executor.checksum import sha256_hex
from executor.naming import KINDS, Version

FORMAT = 1
MANIFEST_FILE = "manifest.json"
MIGRATIONS_DIR = "migrations"
UNHASHED_KEYS = ("bundle_sha256", "signature")
# the sections of a file that holds both directions (dbmate's ``-- migrate:up`` / ``-- migrate:down``):
# ``ManifestEntry.section``
UP = "up"
DOWN = "down"
SECTIONS = (UP, DOWN)


@dataclass(frozen=True)
class ManifestEntry:
    """One migration file in the bundle."""

    file: str  # path relative to the bundle's migrations/ directory, posix separators
    kind: str  # "versioned" | "repeatable" | "undo"
    version: str | None  # the version text as written in the name; None for repeatables
    description: str
    sha256: str  # executor.checksum.file_checksum of the file bytes
    transactional: bool = True
    # per-file settings read from header comments (e.g. {"lock_timeout": "5s"}); may be empty
    settings: dict[str, str] = field(default_factory=dict)
    # "up" / "down" when the file holds both (dbmate); None: the whole file is the migration
    section: str | None = None
    # the name recorded in the history table when it is not ``file`` (a layout's own identifier)
    script_name: str | None = None
    # accepted history whose BEGIN / COMMIT / SAVEPOINT statements are its own (a backfill committed
    # batch by batch, written before schemagate): ``transactional`` is False and the executor runs
    # it as written, statement by statement with its own transaction control, as psql ran it
    own_transactions: bool = False
    # in memory only (never in a manifest file or its hash): False for a file of an ``apply
    # --migrations DIR`` that the structural check skipped because it was applied with these bytes
    # when the command started; the executor refuses to run such an entry (executor.prepare)
    checked: bool = True

    @property
    def parsed_version(self) -> Version | None:
        return Version.parse(self.version) if self.version is not None else None

    @property
    def required_version(self) -> Version:
        """The version of an entry that has one (a versioned or undo migration), for code that handles
        only those; a repeatable has none, and asking for it is a bug in the caller (ValueError)."""
        if self.version is None:
            raise ValueError(f"{self.file} is a {self.kind} migration: it has no version")
        return Version.parse(self.version)

    @property
    def script(self) -> str:
        """The name recorded in the history table."""
        return self.script_name or self.file

    @property
    def key(self) -> tuple[str, str | None]:
        """Unique within a manifest: a file, or one section of it."""
        return (self.file, self.section)

    def to_dict(self) -> dict[str, Any]:
        # dataclasses.asdict's keys and values (the fields are plain values and one dict of strings),
        # without its recursive deep copy: sealing a manifest of 500 files spent 20 ms in it
        data = {name: getattr(self, name) for name in _ENTRY_FIELDS}
        data["settings"] = dict(self.settings)
        for optional in _OPTIONAL_ENTRY_KEYS:  # absent rather than null: bundles of 0.1 hash the same
            if data[optional] is None:
                del data[optional]
        if not self.own_transactions:  # absent rather than false, for the same reason
            del data["own_transactions"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown migration kind {kind!r}")
        return cls(
            file=str(data["file"]),
            kind=kind,
            version=data.get("version"),
            description=str(data.get("description", "")),
            sha256=str(data["sha256"]),
            transactional=bool(data.get("transactional", True)),
            settings={str(k): str(v) for k, v in (data.get("settings") or {}).items()},
            section=_optional_text(data, "section"),
            script_name=_optional_text(data, "script_name"),
            own_transactions=_flag(data, "own_transactions"),
        )


_OPTIONAL_ENTRY_KEYS = ("section", "script_name")
_IN_MEMORY_FIELDS = ("checked",)
_ENTRY_FIELDS = tuple(f.name for f in fields(ManifestEntry) if f.name not in _IN_MEMORY_FIELDS)


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, not {type(value).__name__}")
    return value


@dataclass
class Manifest:
    """A bundle's ``manifest.json``: its migrations in order, where they come from, and its hash and
    signature (see the module doc)."""

    migrations: list[ManifestEntry]
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=lambda: {"error": 0, "warning": 0})
    format: int = FORMAT
    bundle_sha256: str | None = None
    signature: dict[str, Any] | None = None  # {"key_id", "algorithm", "value" (base64)}
    layout: str = "flyway"  # the directory layout the files come from (executor.layouts)
    extra: dict[str, Any] = field(default_factory=dict)  # further keys, hashed like the others

    def hashed_content(self) -> dict[str, Any]:
        content = dict(self.extra)
        content.update(
            {
                "format": self.format,
                "created_at": self.created_at,
                "source": self.source,
                "migrations": [m.to_dict() for m in self.migrations],
                "findings": self.findings,
            }
        )
        content["layout"] = self.layout
        return content

    def compute_sha256(self) -> str:
        return sha256_hex(canonical_json(self.hashed_content()))

    def seal(self) -> Manifest:
        """Set ``bundle_sha256`` from the content; returns self."""
        self.bundle_sha256 = self.compute_sha256()
        return self

    def to_dict(self) -> dict[str, Any]:
        data = self.hashed_content()
        data["bundle_sha256"] = self.bundle_sha256
        if self.signature is not None:
            data["signature"] = self.signature
        return data

    def to_json(self) -> bytes:
        """Pretty (but deterministic) JSON for manifest.json."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(
            "utf-8"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {
            "format",
            "created_at",
            "source",
            "migrations",
            "findings",
            "bundle_sha256",
            "signature",
            "layout",
        }
        layout = data.get("layout", "flyway")
        if not isinstance(layout, str):
            raise ValueError("layout must be a string")
        return cls(
            format=data.get("format"),  # type: ignore[arg-type]
            created_at=data.get("created_at", ""),
            source=data.get("source") or {},
            migrations=[ManifestEntry.from_dict(m) for m in data.get("migrations") or []],
            findings=data.get("findings") or {},
            bundle_sha256=data.get("bundle_sha256"),
            signature=data.get("signature"),
            layout=layout,
            extra={k: v for k, v in data.items() if k not in known},
        )

    @property
    def versioned(self) -> list[ManifestEntry]:
        return [m for m in self.migrations if m.kind == "versioned"]

    @property
    def repeatable(self) -> list[ManifestEntry]:
        return [m for m in self.migrations if m.kind == "repeatable"]

    @property
    def undo(self) -> list[ManifestEntry]:
        return [m for m in self.migrations if m.kind == "undo"]


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
