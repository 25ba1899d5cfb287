"""The bundle as a zip in S3: download it and read it safely into memory.

Nothing is ever extracted to disk.  The zip's central directory is checked as a whole *before* any
entry is read: entry count, declared sizes, names (no ``..``, no absolute paths, no backslashes),
no symbolic links (``external_attr`` carries the Unix mode), no encrypted entries, no duplicates.
Reading is then bounded by the real number of bytes inflated, so a zip that lies about its sizes
(a zip bomb) stops at the limit.  Then ``executor.bundle.verify_contents`` checks the manifest.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from executor.bundle import (
    REMEDY_REBUILD,
    Bundle,
    SignatureVerifier,
    parse_manifest,
    safe_relative_path,
    verify_contents,
)
from executor.errors import (
    BundleIntegrityError,
    ConfigurationError,
    PermissionDenied,
    SecurityViolation,
    aws_error_code,
)
from executor.manifest import MANIFEST_FILE, MIGRATIONS_DIR


@dataclass(frozen=True)
class ZipLimits:
    max_archive_bytes: int = 50 * 1024 * 1024  # the zip as downloaded
    max_total_bytes: int = 100 * 1024 * 1024  # all entries inflated
    max_entry_bytes: int = 20 * 1024 * 1024  # one entry inflated
    max_entries: int = 5000


DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url or "")
        if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
            raise ConfigurationError(
                f"bundle location {url!r} is not an s3://bucket/key URL",
                remedy="pass the bundle zip as s3://bucket/path/to/bundle.zip",
            )
        return cls(bucket=parts.netloc, key=parts.path.lstrip("/"))


def download(location: S3Location, s3_client: Any, *, limits: ZipLimits = DEFAULT_LIMITS) -> bytes:
    """Read the object into memory, refusing objects larger than ``limits.max_archive_bytes``."""
    try:
        response = s3_client.get_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        code = aws_error_code(exc)
        if code in ("AccessDenied", "AccessDeniedException", "403", "InvalidAccessKeyId", "ExpiredToken"):
            raise PermissionDenied(
                f"not allowed to read the bundle {location.url} ({code})",
                remedy="give the executor (or the pipeline's artifact credentials) s3:GetObject on the "
                "artifact bucket and kms:Decrypt on its key",
            ) from None
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise BundleIntegrityError(
                f"the bundle {location.url} does not exist ({code})",
                remedy="check the bucket and key; in the pipeline, the Execute action's input must be the "
                "Validate stage's bundle artifact",
            ) from None
        raise
    length = int(response.get("ContentLength") or 0)
    if length > limits.max_archive_bytes:
        response["Body"].close()
        raise SecurityViolation(
            f"the bundle {location.url} is {length} bytes, more than the limit of {limits.max_archive_bytes}",
            remedy="a bundle holds SQL text only; check what the Validate stage put into the artifact",
        )
    data = response["Body"].read(limits.max_archive_bytes + 1)
    if len(data) > limits.max_archive_bytes:
        raise SecurityViolation(
            f"the bundle {location.url} is larger than the limit of {limits.max_archive_bytes} bytes",
            remedy="a bundle holds SQL text only; check what the Validate stage put into the artifact",
        )
    return data


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)  # the Unix mode lives in the high 16 bits


def _check_entry(info: zipfile.ZipInfo, origin: str, limits: ZipLimits) -> None:
    name = info.filename
    mode = info.external_attr >> 16
    if _is_symlink(info):
        raise SecurityViolation(f"{name} in {origin} is a symbolic link", file=name, remedy=REMEDY_REBUILD)
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (most tools)
        raise SecurityViolation(f"{name} in {origin} is not a regular file", file=name, remedy=REMEDY_REBUILD)
    safe_relative_path(name.rstrip("/") if info.is_dir() else name, what=f"zip entry in {origin}")
    if info.flag_bits & 0x1:
        raise SecurityViolation(f"{name} in {origin} is encrypted", file=name, remedy=REMEDY_REBUILD)
    if info.file_size > limits.max_entry_bytes:
        raise SecurityViolation(
            f"{name} in {origin} inflates to {info.file_size} bytes, "
            f"more than the limit of {limits.max_entry_bytes}",
            file=name,
            remedy=REMEDY_REBUILD,
        )


def read_zip(data: bytes, *, origin: str, limits: ZipLimits = DEFAULT_LIMITS) -> dict[str, bytes]:
    """Every regular file of the zip, by its name, after checking the whole archive first."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise BundleIntegrityError(
            f"{origin} is not a zip archive ({exc})",
            remedy="the Execute action's input must be the bundle artifact written by the Validate stage",
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise SecurityViolation(
                f"{origin} holds {len(infos)} entries, more than the limit of {limits.max_entries}",
                remedy=REMEDY_REBUILD,
            )
        declared = 0
        seen: set[str] = set()
        for info in infos:
            _check_entry(info, origin, limits)
            key = info.filename.rstrip("/")
            if key in seen:
                raise SecurityViolation(f"{key} appears twice in {origin}", file=key, remedy=REMEDY_REBUILD)
            seen.add(key)
            declared += info.file_size
        if declared > limits.max_total_bytes:
            raise SecurityViolation(
                f"{origin} inflates to {declared} bytes, more than the limit of {limits.max_total_bytes}",
                remedy=REMEDY_REBUILD,
            )
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            try:
                with archive.open(info) as stream:
                    content = stream.read(limits.max_entry_bytes + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                raise BundleIntegrityError(
                    f"{info.filename} in {origin} cannot be read ({exc})",
                    file=info.filename,
                    remedy=REMEDY_REBUILD,
                ) from None
            total += len(content)
            if len(content) > limits.max_entry_bytes or total > limits.max_total_bytes:
                raise SecurityViolation(
                    f"{info.filename} in {origin} inflates beyond the size limits "
                    "(its header understates it)",
                    file=info.filename,
                    remedy=REMEDY_REBUILD,
                )
            files[info.filename] = content
    return files


def _bundle_root(names: list[str], origin: str) -> str:
    """'' when manifest.json is at the top; 'dir/' when the whole bundle sits in one directory."""
    if MANIFEST_FILE in names:
        return ""
    candidates = sorted({n[: -len(MANIFEST_FILE)] for n in names if n.endswith("/" + MANIFEST_FILE)})
    candidates = [c for c in candidates if c.count("/") == 1]
    if len(candidates) == 1:
        return candidates[0]
    raise BundleIntegrityError(
        f"{origin} has no {MANIFEST_FILE}: it is not a schemagate bundle",
        remedy="the artifact must be the directory written by `schemagate validate --bundle DIR` "
        "(in buildspec.yml: artifacts.base-directory set to that directory)",
    )


def bundle_from_zip(
    data: bytes,
    *,
    origin: str,
    signature_verifier: SignatureVerifier | None = None,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> Bundle:
    """Read, check and verify a zipped bundle; raises before anything is used."""
    entries = read_zip(data, origin=origin, limits=limits)
    root = _bundle_root(list(entries), origin)
    manifest, raw = parse_manifest(entries[root + MANIFEST_FILE], origin=origin)
    prefix = root + MIGRATIONS_DIR + "/"
    files: dict[str, bytes] = {}
    for name, content in entries.items():
        if name == root + MANIFEST_FILE:
            continue
        if not name.startswith(prefix):
            raise BundleIntegrityError(
                f"{name} is in the bundle but not listed in {MANIFEST_FILE}", file=name, remedy=REMEDY_REBUILD
            )
        files[name[len(prefix) :]] = content
    return verify_contents(manifest, raw, files, origin=origin, signature_verifier=signature_verifier)


def fetch_bundle(
    location: S3Location,
    s3_client: Any,
    *,
    signature_verifier: SignatureVerifier | None = None,
    limits: ZipLimits = DEFAULT_LIMITS,
) -> Bundle:
    """Download ``location`` and return the verified in-memory bundle."""
    data = download(location, s3_client, limits=limits)
    return bundle_from_zip(data, origin=location.url, signature_verifier=signature_verifier, limits=limits)


def zip_bundle(bundle: Bundle) -> bytes:
    """The zip layout the executor reads (``manifest.json`` + ``migrations/<file>``); for tests and tools."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST_FILE, bundle.manifest.to_json())
        for entry in bundle.manifest.migrations:
            archive.writestr(f"{MIGRATIONS_DIR}/{entry.file}", bundle.files[entry.file])
    return buffer.getvalue()
