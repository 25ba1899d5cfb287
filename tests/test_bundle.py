"""The bundle is verified before any database access: every refusal README.md "Applying" lists."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from executor.bundle import (
    MAX_MANIFEST_DEPTH,
    _depth_exceeds,
    load_bundle,
    make_bundle,
    raw_manifest_sha256,
    safe_relative_path,
    write_bundle,
)
from executor.checksum import file_checksum
from executor.errors import BundleIntegrityError, SecurityViolation
from executor.manifest import Manifest, ManifestEntry

FILES = {
    "V001__create_customers.sql": b"CREATE TABLE customers (id bigint PRIMARY KEY);\n",
    "V002__create_invoices.sql": b"\xef\xbb\xbfCREATE TABLE invoices (id bigint PRIMARY KEY);\r\n",
    "R__customer_view.sql": b"CREATE OR REPLACE VIEW v AS SELECT 1;\n",
}


def _entries() -> list[tuple[ManifestEntry, bytes]]:
    out = []
    for name, data in FILES.items():
        kind = "repeatable" if name.startswith("R__") else "versioned"
        version = None if kind == "repeatable" else name[1:4]
        out.append(
            (
                ManifestEntry(
                    file=name, kind=kind, version=version, description=name, sha256=file_checksum(data)
                ),
                data,
            )
        )
    return out


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    bundle = make_bundle(
        _entries(), source={"repository": "example", "commit": "abc"}, findings={"error": 0, "warning": 1}
    )
    write_bundle(bundle, tmp_path / "bundle")
    return tmp_path / "bundle"


def _rewrite_manifest(bundle_dir: Path, change) -> None:
    path = bundle_dir / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_written_bundle_loads_byte_for_byte(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    assert bundle.files == FILES
    assert [m.file for m in bundle.manifest.migrations] == list(FILES)
    assert bundle.manifest.bundle_sha256 == bundle.manifest.compute_sha256()
    # the SQL text has the BOM removed and CRLF turned into LF
    assert (
        bundle.sql(bundle.entry("V002__create_invoices.sql"))
        == "CREATE TABLE invoices (id bigint PRIMARY KEY);\n"
    )


def test_checksum_ignores_bom_and_crlf() -> None:
    assert file_checksum(b"\xef\xbb\xbfSELECT 1;\r\n") == file_checksum(b"SELECT 1;\n")
    assert file_checksum(b"SELECT 1;\n") != file_checksum(b"SELECT 2;\n")


def test_missing_manifest_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "manifest.json").unlink()
    with pytest.raises(BundleIntegrityError, match=r"no manifest\.json"):
        load_bundle(bundle_dir)


def test_unknown_format_is_refused(bundle_dir: Path) -> None:
    _rewrite_manifest(bundle_dir, lambda d: d.update(format=2))
    with pytest.raises(BundleIntegrityError, match="format 2"):
        load_bundle(bundle_dir)


def test_a_layout_this_executor_does_not_know_is_refused(bundle_dir: Path) -> None:
    """A bundle built by a newer schemagate for a layout this executor lacks (rehashed consistently,
    so that only the layout check can refuse it) names the layout and the known ones."""

    def newer(data: dict) -> None:
        data["layout"] = "liquibase"
        data["bundle_sha256"] = raw_manifest_sha256(data)

    _rewrite_manifest(bundle_dir, newer)
    with pytest.raises(BundleIntegrityError, match="names the layout 'liquibase'") as exc:
        load_bundle(bundle_dir)
    assert "flyway" in exc.value.message and "dbmate" in exc.value.message
    assert exc.value.file == "manifest.json"


def test_edited_file_is_refused_with_both_checksums(bundle_dir: Path) -> None:
    target = bundle_dir / "migrations" / "V001__create_customers.sql"
    target.write_bytes(target.read_bytes() + b"DROP TABLE customers;\n")
    with pytest.raises(BundleIntegrityError) as exc:
        load_bundle(bundle_dir)
    assert exc.value.file == "V001__create_customers.sql"
    assert exc.value.context["expected"] == file_checksum(FILES["V001__create_customers.sql"])
    assert "remedy" in str(exc.value)


def test_extra_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "migrations" / "V003__sneaky.sql").write_bytes(b"DROP TABLE customers;")
    with pytest.raises(BundleIntegrityError, match="not listed"):
        load_bundle(bundle_dir)


def test_extra_top_level_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "run-me.sh").write_text("echo hi")
    with pytest.raises(BundleIntegrityError, match="not listed"):
        load_bundle(bundle_dir)


def test_absent_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "migrations" / "R__customer_view.sql").unlink()
    with pytest.raises(BundleIntegrityError, match="absent"):
        load_bundle(bundle_dir)


def test_manifest_edit_without_rehash_is_refused(bundle_dir: Path) -> None:
    _rewrite_manifest(bundle_dir, lambda d: d["migrations"][0].update(transactional=False))
    with pytest.raises(BundleIntegrityError, match="bundle_sha256"):
        load_bundle(bundle_dir)


def test_consistent_rehash_of_a_substituted_file_is_caught_by_signature(bundle_dir: Path) -> None:
    """Without a signature an attacker who rewrites both file and hashes is only stopped by the
    signature verifier; the verifier is called with the manifest."""
    seen: list[Manifest] = []

    def verifier(manifest: Manifest) -> None:
        seen.append(manifest)
        raise SecurityViolation("signature missing")

    with pytest.raises(SecurityViolation):
        load_bundle(bundle_dir, signature_verifier=verifier)
    assert seen and seen[0].bundle_sha256


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs.sql", "a/../../b.sql", "a\\b.sql", "C:x.sql", ""])
def test_paths_escaping_the_bundle_are_security_violations(name: str) -> None:
    with pytest.raises(SecurityViolation):
        safe_relative_path(name)


def test_manifest_entry_escaping_the_bundle_is_refused(bundle_dir: Path) -> None:
    def change(d):
        d["migrations"][0]["file"] = "../outside.sql"

    _rewrite_manifest(bundle_dir, change)
    # rehash so only the path check can stop it
    data = json.loads((bundle_dir / "manifest.json").read_text())
    from executor.bundle import raw_manifest_sha256

    data["bundle_sha256"] = raw_manifest_sha256(data)
    (bundle_dir / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(SecurityViolation, match="escapes"):
        load_bundle(bundle_dir)


def test_symlink_in_bundle_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    target = bundle_dir / "migrations" / "V001__create_customers.sql"
    outside = tmp_path / "outside.sql"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(outside, target)
    with pytest.raises(SecurityViolation, match="symbolic link"):
        load_bundle(bundle_dir)


def test_rewriting_a_bundle_removes_stale_files(bundle_dir: Path) -> None:
    (bundle_dir / "migrations" / "V009__stale.sql").write_text("SELECT 1;")
    bundle = make_bundle(_entries()[:1])
    write_bundle(bundle, bundle_dir)
    assert load_bundle(bundle_dir).files.keys() == {"V001__create_customers.sql"}


def test_bundle_hash_covers_every_key_but_hash_and_signature() -> None:
    bundle = make_bundle(_entries(), created_at="2026-01-01T00:00:00+00:00")
    before = bundle.manifest.bundle_sha256
    bundle.manifest.signature = {"key_id": "k", "algorithm": "ECDSA_SHA_256", "value": "AAAA"}
    assert bundle.manifest.compute_sha256() == before
    bundle.manifest.source = {"commit": "other"}
    assert bundle.manifest.compute_sha256() != before


@pytest.mark.parametrize(
    "entry",
    [
        ManifestEntry("V001__a.sql", "versioned", "001", "a", "0" * 64),
        ManifestEntry(
            "20260101000001_b.sql",
            "versioned",
            "20260101000001",
            "b",
            "1" * 64,
            transactional=False,
            settings={"lock_timeout": "5s", "statement_timeout": "1min"},
            section="up",
            script_name="20260101000001",
        ),
        ManifestEntry(
            "V021__by_hand.sql",
            "versioned",
            "021",
            "by hand",
            "2" * 64,
            transactional=False,
            own_transactions=True,
        ),
    ],
)
def test_an_entry_hashes_as_dataclasses_asdict_would_write_it(entry: ManifestEntry) -> None:
    """ManifestEntry.to_dict is written out field by field (asdict's deep copy was the cost of sealing a
    large manifest): the keys, their order and the values stay asdict's, so no bundle's hash moves."""
    import dataclasses

    # ``checked`` is in memory only (ManifestEntry.checked): never written, never hashed;
    # ``own_transactions`` is written only when true, so the bundles of 0.1 hash as they did
    expected = {
        k: v
        for k, v in dataclasses.asdict(entry).items()
        if (v is not None or k == "version") and k != "checked" and (k != "own_transactions" or v)
    }
    got = entry.to_dict()
    assert list(got) == list(expected) and got == expected
    got["settings"]["lock_timeout"] = "1s"  # a copy: the frozen entry keeps its own
    assert entry.settings.get("lock_timeout") in (None, "5s")


@pytest.mark.parametrize(("levels", "refused"), [(MAX_MANIFEST_DEPTH, False), (MAX_MANIFEST_DEPTH + 1, True)])
def test_manifest_depth_is_counted_in_levels_of_objects_and_lists(levels: int, refused: bool) -> None:
    """A manifest nests objects and lists up to MAX_MANIFEST_DEPTH levels (the top object is one)."""
    value: object = "leaf"
    for level in range(levels):
        value = {"k": value, "n": 2} if level % 2 else [1, value, "x"]
    assert _depth_exceeds(value, MAX_MANIFEST_DEPTH) is refused


def test_rewriting_a_bundle_keeps_unchanged_files_and_replaces_the_rest(
    bundle_dir: Path, tmp_path: Path
) -> None:
    migrations = bundle_dir / "migrations"
    kept = migrations / "V001__create_customers.sql"
    os.utime(kept, ns=(1_000_000_000, 1_000_000_000))  # 2001: a rewrite would make it now
    changed = migrations / "V002__create_invoices.sql"
    changed.write_text("DROP TABLE customers;")  # edited in the directory after the bundle was written
    outside = tmp_path / "outside.sql"
    outside.write_text("SELECT 'outside';")
    linked = migrations / "R__customer_view.sql"
    linked.unlink()
    os.symlink(outside, linked)  # a symbolic link where a file of the bundle goes: replaced, not followed
    (migrations / "old").mkdir()
    (migrations / "old" / "V000__gone.sql").write_text("SELECT 1;")
    bundle = make_bundle(_entries())
    write_bundle(bundle, bundle_dir)
    assert kept.stat().st_mtime_ns == 1_000_000_000  # the same bytes: not written again
    assert not linked.is_symlink() and outside.read_text() == "SELECT 'outside';"
    assert not (migrations / "old").exists()
    loaded = load_bundle(bundle_dir)
    assert loaded.files == bundle.files
