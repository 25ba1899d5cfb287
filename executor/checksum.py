"""Checksums of migration files (SHA-256 of the bytes after removing a UTF-8 BOM and
turning CRLF into LF)."""

from __future__ import annotations

import hashlib

UTF8_BOM = b"\xef\xbb\xbf"


def normalize(data: bytes) -> bytes:
    """The bytes a checksum is computed over: no UTF-8 BOM, LF line endings."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    return data.replace(b"\r\n", b"\n")


def file_checksum(data: bytes) -> str:
    """SHA-256 hex of the normalized file bytes."""
    return hashlib.sha256(normalize(data)).hexdigest()


def sha256_hex(data: bytes) -> str:
    """Plain SHA-256 hex of exact bytes (used for the bundle's own hash)."""
    return hashlib.sha256(data).hexdigest()


def decode_sql(data: bytes) -> str:
    """The text of a migration file: UTF-8, BOM removed, CRLF turned into LF.

    Raises UnicodeDecodeError for invalid UTF-8; callers turn that into a finding or an error
    that names the file and the byte offset.
    """
    return normalize(data).decode("utf-8")
