"""Reading a zipped bundle: every check runs on the archive before any entry is used."""

from __future__ import annotations

import io
import stat
import zipfile

import boto3
import pytest
from moto import mock_aws

from executor.artifact import S3Location, ZipLimits, bundle_from_zip, fetch_bundle, read_zip, zip_bundle
from executor.bundle import Bundle, make_bundle
from executor.checksum import file_checksum
from executor.errors import BundleIntegrityError, ConfigurationError, PermissionDenied, SecurityViolation
from executor.manifest import ManifestEntry

FILES = {
    "V1__customers.sql": b"CREATE TABLE customers (id bigint PRIMARY KEY);\n",
    "V2__invoices.sql": b"CREATE TABLE invoices (id bigint PRIMARY KEY);\n",
}


def _bundle() -> Bundle:
    entries = [
        (ManifestEntry(file=n, kind="versioned", version=n[1], description=n, sha256=file_checksum(d)), d)
        for n, d in FILES.items()
    ]
    return make_bundle(entries, source={"commit": "abc"})


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _bundle_entries(prefix: str = "") -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    bundle = _bundle()
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (prefix + "manifest.json", bundle.manifest.to_json())
    ]
    entries += [(f"{prefix}migrations/{name}", data) for name, data in FILES.items()]
    return entries


def test_zipped_bundle_reads_back_byte_for_byte() -> None:
    bundle = _bundle()
    loaded = bundle_from_zip(zip_bundle(bundle), origin="s3://b/k.zip")
    assert loaded.files == FILES
    assert loaded.bundle_sha256 == bundle.bundle_sha256
    assert loaded.origin == "s3://b/k.zip"


def test_bundle_inside_one_directory_is_found() -> None:
    loaded = bundle_from_zip(_zip(_bundle_entries("bundle/")), origin="z")
    assert set(loaded.files) == set(FILES)


@pytest.mark.parametrize(
    "evil",
    [
        "../evil.sql",
        "migrations/../../evil.sql",
        "/etc/cron.d/evil",
        "C:/evil.sql",
        "migrations\\..\\evil.sql",
    ],
)
def test_escaping_entries_are_refused_before_anything_is_read(evil: str) -> None:
    # the escaping entry comes *last*: the whole central directory is checked first
    data = _zip([*_bundle_entries(), (evil, b"DROP TABLE customers;")])
    with pytest.raises(SecurityViolation) as exc:
        bundle_from_zip(data, origin="z")
    assert exc.value.category.value == "SECURITY_VIOLATION"
    assert exc.value.remedy


def test_symlink_entry_is_refused() -> None:
    link = zipfile.ZipInfo("migrations/V3__link.sql")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = _zip([*_bundle_entries(), (link, b"/etc/passwd")])
    with pytest.raises(SecurityViolation, match="symbolic link"):
        bundle_from_zip(data, origin="z")


def test_encrypted_and_duplicate_entries_are_refused() -> None:
    data = bytearray(_zip(_bundle_entries()))
    # set the "encrypted" flag bit of the first central directory record
    at = data.find(b"PK\x01\x02")
    data[at + 8] |= 0x1
    with pytest.raises(SecurityViolation, match="encrypted"):
        read_zip(bytes(data), origin="z")
    with pytest.warns(UserWarning, match="Duplicate name"):
        duplicate = _zip([*_bundle_entries(), ("migrations/V1__customers.sql", b"DROP TABLE customers;")])
    with pytest.raises(SecurityViolation, match="twice"):
        read_zip(duplicate, origin="z")


def test_limits_on_count_and_sizes() -> None:
    data = _zip(_bundle_entries())
    with pytest.raises(SecurityViolation, match="entries"):
        read_zip(data, origin="z", limits=ZipLimits(max_entries=2))
    with pytest.raises(SecurityViolation, match="inflates to"):
        read_zip(data, origin="z", limits=ZipLimits(max_entry_bytes=40))
    with pytest.raises(SecurityViolation, match="more than the limit"):
        read_zip(data, origin="z", limits=ZipLimits(max_total_bytes=200))
    # a highly compressible entry (a bomb in miniature) is stopped by its inflated size
    bomb = _zip([("migrations/V9__bomb.sql", b"\0" * 2_000_000)])
    assert len(bomb) < 10_000
    with pytest.raises(SecurityViolation):
        read_zip(bomb, origin="z", limits=ZipLimits(max_entry_bytes=1_000_000))


def test_tampered_or_foreign_content_is_refused() -> None:
    entries = _bundle_entries()
    entries[1] = (entries[1][0], entries[1][1] + b"DROP TABLE customers;\n")
    with pytest.raises(BundleIntegrityError, match="does not match its checksum"):
        bundle_from_zip(_zip(entries), origin="z")
    with pytest.raises(BundleIntegrityError, match="not listed"):
        bundle_from_zip(_zip([*_bundle_entries(), ("reports/junit.xml", b"<x/>")]), origin="z")
    with pytest.raises(BundleIntegrityError, match=r"no manifest\.json"):
        bundle_from_zip(_zip(_bundle_entries()[1:]), origin="z")
    with pytest.raises(BundleIntegrityError, match="not a zip"):
        bundle_from_zip(b"not a zip at all", origin="z")


def test_s3_location_parsing() -> None:
    assert S3Location.parse("s3://bucket/a/b.zip") == S3Location("bucket", "a/b.zip")
    assert S3Location("bucket", "a/b.zip").url == "s3://bucket/a/b.zip"
    for bad in ("https://bucket/a.zip", "s3://bucket", "s3:///key", ""):
        with pytest.raises(ConfigurationError):
            S3Location.parse(bad)


def test_fetch_from_s3_with_limits_and_errors() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="bundle.zip", Body=zip_bundle(_bundle()))
        bundle = fetch_bundle(S3Location("artifacts", "bundle.zip"), s3)
        assert bundle.files == FILES
        with pytest.raises(SecurityViolation, match="more than the limit"):
            fetch_bundle(S3Location("artifacts", "bundle.zip"), s3, limits=ZipLimits(max_archive_bytes=100))
        with pytest.raises(BundleIntegrityError, match="does not exist"):
            fetch_bundle(S3Location("artifacts", "missing.zip"), s3)

        class Denied:
            def get_object(self, **_):
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

        with pytest.raises(PermissionDenied, match="not allowed"):
            fetch_bundle(S3Location("artifacts", "bundle.zip"), Denied())


def test_directory_zipped_like_codebuild_reads_back(tmp_path) -> None:
    # CodeBuild zips `base-directory: bundle` with directory entries and real Unix modes
    from executor.bundle import write_bundle

    bundle = _bundle()
    root = tmp_path / "bundle"
    write_bundle(bundle, root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, path.relative_to(root).as_posix())
    infos = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).infolist()
    names = {i.filename: i.external_attr >> 16 for i in infos}
    assert stat.S_ISDIR(names["migrations/"]) and stat.S_ISREG(names["manifest.json"])
    loaded = bundle_from_zip(buffer.getvalue(), origin="codebuild")
    assert loaded.files == FILES and loaded.bundle_sha256 == bundle.bundle_sha256
