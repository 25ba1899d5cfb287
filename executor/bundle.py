"""The approved bundle: ``manifest.json`` plus ``migrations/<file>`` byte for byte.

``load_bundle`` verifies everything listed in README.md "Applying" *before* anything touches a database and
returns an in-memory ``Bundle``; from then on the executor only reads bytes from memory, so what
was verified is exactly what runs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from executor.checksum import decode_sql, file_checksum, sha256_hex
from executor.errors import BundleIntegrityError, SecurityViolation
from executor.manifest import (
    FORMAT,
    MANIFEST_FILE,
    MIGRATIONS_DIR,
    SECTIONS,
    UNHASHED_KEYS,
    Manifest,
    ManifestEntry,
    canonical_json,
)

SignatureVerifier = Callable[[Manifest], None]

REMEDY_REBUILD = (
    "do not edit a bundle by hand: rebuild it with `schemagate validate --bundle DIR` "
    "from the approved commit"
)


@dataclass
class Bundle:
    """A verified bundle held in memory."""

    manifest: Manifest
    files: dict[str, bytes] = field(default_factory=dict)  # manifest entry file -> exact bytes
    origin: str = "memory"  # where it was read from (a directory, an s3:// URL, "migrations DIR")

    @property
    def bundle_sha256(self) -> str:
        assert self.manifest.bundle_sha256 is not None
        return self.manifest.bundle_sha256

    def sql(self, entry: ManifestEntry) -> str:
        """The SQL text of one migration (BOM removed, CRLF as LF; one section of the file where the
        layout keeps up and down in one file, other lines left empty so line numbers still match;
        the layout's own reading of a whole file otherwise, exactly as validation saw it)."""
        text = decode_sql(self.files[entry.file])
        from executor import layouts

        return layouts.get(self.manifest.layout).section_text(text, entry.section)

    def entry(self, file: str) -> ManifestEntry:
        for m in self.manifest.migrations:
            if m.file == file:
                return m
        raise KeyError(file)


def check_relative_path(name: str, *, what: str = "path") -> None:
    """Refuse absolute paths, '..', backslashes, drive letters and empty names (SECURITY_VIOLATION)."""
    if not name or "\x00" in name:
        raise SecurityViolation(f"{what} {name!r} is empty or contains a NUL byte", remedy=REMEDY_REBUILD)
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise SecurityViolation(f"{what} {name!r} is absolute or not a POSIX path", remedy=REMEDY_REBUILD)
    if ".." in name.split("/"):
        raise SecurityViolation(f"{what} {name!r} escapes the bundle", remedy=REMEDY_REBUILD)


def safe_relative_path(name: str, *, what: str = "path") -> PurePosixPath:
    """``name`` as a relative POSIX path, refused as ``check_relative_path`` refuses it."""
    check_relative_path(name, what=what)
    return PurePosixPath(name)


def raw_manifest_sha256(data: dict) -> str:
    """The bundle hash of a manifest as it was read (every key but the unhashed ones)."""
    return sha256_hex(canonical_json({k: v for k, v in data.items() if k not in UNHASHED_KEYS}))


MAX_MANIFEST_DEPTH = 32  # a manifest nests four levels deep; anything far deeper is not one


def _depth_exceeds(data: object, limit: int) -> bool:
    """Does ``data`` nest lists / objects deeper than ``limit``?  (Iterative: no recursion to exhaust.)"""
    level: list[dict | list] = [data] if isinstance(data, dict | list) else []
    depth = 0
    while level:  # one nesting level at a time: the objects and lists found inside the previous one
        depth += 1
        if depth > limit:
            return True
        inside: list[dict | list] = []
        for value in level:
            for child in value.values() if isinstance(value, dict) else value:
                if isinstance(child, dict | list):  # scalars end here
                    inside.append(child)
        level = inside
    return False


def parse_manifest(raw: bytes, *, origin: str) -> tuple[Manifest, dict]:
    """The manifest of a bundle; anything malformed is a BundleIntegrityError (never a crash)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleIntegrityError(
            f"{MANIFEST_FILE} in {origin} is not valid JSON: {exc}", file=MANIFEST_FILE, remedy=REMEDY_REBUILD
        ) from None
    except RecursionError:
        too_deep = True  # nested too deeply for the JSON decoder itself
    else:
        too_deep = _depth_exceeds(data, MAX_MANIFEST_DEPTH)
    if too_deep:
        raise BundleIntegrityError(
            f"{MANIFEST_FILE} in {origin} nests deeper than {MAX_MANIFEST_DEPTH} levels: it is not a "
            "manifest schemagate wrote",
            file=MANIFEST_FILE,
            remedy=REMEDY_REBUILD,
        )
    if not isinstance(data, dict):
        raise BundleIntegrityError(f"{MANIFEST_FILE} in {origin} is not a JSON object", remedy=REMEDY_REBUILD)
    if data.get("format") != FORMAT:
        raise BundleIntegrityError(
            f"{MANIFEST_FILE} in {origin} has format {data.get('format')!r}; "
            f"this executor reads format {FORMAT}",
            file=MANIFEST_FILE,
            remedy="build the bundle with a schemagate version that writes format 1, or upgrade the executor",
        )
    try:
        manifest = Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleIntegrityError(
            f"{MANIFEST_FILE} in {origin} is malformed: {exc}", file=MANIFEST_FILE, remedy=REMEDY_REBUILD
        ) from None
    return manifest, data


def verify_contents(
    manifest: Manifest,
    raw: dict,
    files: dict[str, bytes],
    *,
    origin: str,
    signature_verifier: SignatureVerifier | None = None,
) -> Bundle:
    """Check hash, listing and every file's checksum; ``files`` maps manifest paths to bytes."""
    actual_hash = raw_manifest_sha256(raw)
    if manifest.bundle_sha256 != actual_hash:
        raise BundleIntegrityError(
            f"bundle_sha256 in {MANIFEST_FILE} does not match its content "
            f"(recorded {manifest.bundle_sha256}, computed {actual_hash}): "
            "the manifest was changed after it was written",
            file=MANIFEST_FILE,
            remedy=REMEDY_REBUILD,
            context={"expected": manifest.bundle_sha256, "actual": actual_hash},
        )
    listed: set[str] = set()
    keys: set[tuple[str, str | None]] = set()
    whole: set[str] = set()  # files listed as one migration (no section): listed once only
    from executor import layouts  # the registry of names: the layout itself is imported to read SQL

    if (manifest.layout or layouts.DEFAULT_LAYOUT) not in layouts.LAYOUTS:
        raise BundleIntegrityError(
            f"{MANIFEST_FILE} in {origin} names the layout {manifest.layout!r}, which this executor does "
            f"not know (it knows {', '.join(sorted(layouts.LAYOUTS))})",
            file=MANIFEST_FILE,
            remedy="build the bundle with the same schemagate version as the executor, or upgrade it",
        )
    for entry in manifest.migrations:
        check_relative_path(entry.file, what="manifest entry")
        if entry.section is not None and entry.section not in SECTIONS:
            raise BundleIntegrityError(
                f"{entry.file} has the unknown section {entry.section!r} in {MANIFEST_FILE}",
                file=entry.file,
                remedy=REMEDY_REBUILD,
            )
        if entry.key in keys or entry.file in whole or (entry.section is None and entry.file in listed):
            raise BundleIntegrityError(
                f"{entry.file} is listed twice in {MANIFEST_FILE}", remedy=REMEDY_REBUILD
            )
        keys.add(entry.key)
        listed.add(entry.file)
        if entry.section is None:
            whole.add(entry.file)
        if entry.file not in files:
            raise BundleIntegrityError(
                f"{entry.file} is listed in {MANIFEST_FILE} but absent from the bundle",
                file=entry.file,
                remedy=REMEDY_REBUILD,
            )
        actual = file_checksum(files[entry.file])
        if actual != entry.sha256:
            raise BundleIntegrityError(
                f"{entry.file} does not match its checksum in {MANIFEST_FILE} "
                f"(expected {entry.sha256}, actual {actual}): the file was changed after validation",
                file=entry.file,
                remedy=REMEDY_REBUILD,
                context={"expected": entry.sha256, "actual": actual},
            )
    extra = sorted(set(files) - listed)
    if extra:
        raise BundleIntegrityError(
            f"{MIGRATIONS_DIR}/{extra[0]} is in the bundle but not listed in {MANIFEST_FILE}"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""),
            file=extra[0],
            remedy=REMEDY_REBUILD,
        )
    if signature_verifier is not None:
        signature_verifier(manifest)
    return Bundle(manifest=manifest, files=dict(files), origin=origin)


def load_bundle(path: str | os.PathLike, *, signature_verifier: SignatureVerifier | None = None) -> Bundle:
    """Read and verify a bundle directory.  Raises BundleIntegrityError / SecurityViolation."""
    root = Path(path)
    origin = str(root)
    if not root.is_dir():
        raise BundleIntegrityError(
            f"bundle directory {origin} does not exist",
            remedy="pass the directory written by `schemagate validate --bundle DIR`",
        )
    manifest_path = root / MANIFEST_FILE
    if manifest_path.is_symlink():
        raise SecurityViolation(f"{MANIFEST_FILE} in {origin} is a symbolic link", remedy=REMEDY_REBUILD)
    if not manifest_path.is_file():
        raise BundleIntegrityError(
            f"{origin} has no {MANIFEST_FILE}: it is not a schemagate bundle",
            remedy="pass the directory written by `schemagate validate --bundle DIR`",
        )
    manifest, raw = parse_manifest(manifest_path.read_bytes(), origin=origin)

    files: dict[str, bytes] = {}
    base = os.path.join(origin, "")  # paths as strings: pathlib costs more than the reading, per file
    prefix = MIGRATIONS_DIR + "/"
    for dirpath, dirnames, filenames in os.walk(origin, followlinks=False):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            rel = full[len(base) :].replace(os.sep, "/")
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise SecurityViolation(
                    f"{rel} in bundle {origin} is a symbolic link", file=rel, remedy=REMEDY_REBUILD
                )
            if name in dirnames:
                continue
            if not stat.S_ISREG(mode):
                raise SecurityViolation(
                    f"{rel} in bundle {origin} is not a regular file", file=rel, remedy=REMEDY_REBUILD
                )
            if rel == MANIFEST_FILE:
                continue
            if not rel.startswith(prefix):
                raise BundleIntegrityError(
                    f"{rel} is in the bundle but not listed in {MANIFEST_FILE}",
                    file=rel,
                    remedy=REMEDY_REBUILD,
                )
            with open(full, "rb", buffering=0) as f:  # read whole: no buffer (nor its tty check) between
                files[rel[len(prefix) :]] = f.read()
    return verify_contents(manifest, raw, files, origin=origin, signature_verifier=signature_verifier)


def make_bundle(
    entries: list[tuple[ManifestEntry, bytes]],
    *,
    source: dict | None = None,
    findings: dict[str, int] | None = None,
    created_at: str | None = None,
    origin: str = "memory",
    layout: str = "flyway",
    extra: dict | None = None,
) -> Bundle:
    """Build a sealed in-memory bundle from entries (in application order) and their bytes;
    ``extra``: further manifest keys (hashed like the others), e.g. ``search_path``."""
    manifest = Manifest(
        migrations=[e for e, _ in entries], source=dict(source or {}), layout=layout, extra=dict(extra or {})
    )
    if findings is not None:
        manifest.findings = dict(findings)
    if created_at is not None:
        manifest.created_at = created_at
    manifest.seal()
    return Bundle(manifest=manifest, files={e.file: data for e, data in entries}, origin=origin)


def write_bundle(bundle: Bundle, directory: str | os.PathLike) -> Path:
    """Write ``manifest.json`` and ``migrations/<file>`` into ``directory`` (created; must be empty
    of other bundle content).  Returns the manifest path.

    Over an earlier bundle (a local ``validate --bundle`` run again), what the new one does not hold
    is removed (files, symbolic links, directories), and a file that already holds the same bytes is
    left as it is: creating 500 files again costs more than reading them (new inodes)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    migrations = root / MIGRATIONS_DIR
    wanted = {
        safe_relative_path(entry.file, what="migration file").as_posix(): bundle.files[entry.file]
        for entry in bundle.manifest.migrations
    }
    wanted_dirs = {parent for rel in wanted for parent in PurePosixPath(rel).parents}
    unchanged: set[str] = set()
    if migrations.is_symlink() or (migrations.exists() and not migrations.is_dir()):
        migrations.unlink()
    elif migrations.exists():
        # a stale bundle must not leave extra files behind
        for p in sorted(migrations.rglob("*"), reverse=True):
            rel = p.relative_to(migrations).as_posix()
            if p.is_symlink() or not (p.is_dir() or p.is_file()):
                p.unlink()
            elif p.is_dir():
                if PurePosixPath(rel) not in wanted_dirs:
                    p.rmdir()
            elif rel not in wanted:
                p.unlink()
            elif p.read_bytes() == wanted[rel]:
                unchanged.add(rel)
    migrations.mkdir(exist_ok=True)
    for rel, data in wanted.items():
        if rel in unchanged:
            continue
        target = migrations / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    manifest_path = root / MANIFEST_FILE
    manifest_path.write_bytes(bundle.manifest.to_json())
    return manifest_path
