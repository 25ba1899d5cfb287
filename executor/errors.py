"""Errors that carry their context and a remedy.

Every refusal the executor makes is one of these.  ``category`` is one of the log categories
the Lambda logs (``Category``); ``exit_code`` is what the CLI returns (1: the migrations or the
database refused, 2: bad usage or configuration).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    BUNDLE_INTEGRITY = "BUNDLE_INTEGRITY"
    SECURITY_VIOLATION = "SECURITY_VIOLATION"
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"
    SQL_ERROR = "SQL_ERROR"
    LOCK_TIMEOUT = "LOCK_TIMEOUT"
    CONNECTION_ERROR = "CONNECTION_ERROR"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"


class SchemagateError(Exception):
    """Base class: a message, a remedy and the context that explains the refusal."""

    category: Category = Category.CONFIGURATION_ERROR
    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        rule: str | None = None,
        category: Category | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.file = file
        self.line = line
        self.column = column
        self.rule = rule
        if category is not None:
            self.category = category
        self.context = dict(context or {})

    def location(self) -> str | None:
        if not self.file:
            return None
        loc = self.file
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        parts = []
        loc = self.location()
        if loc:
            parts.append(f"{loc}: ")
        if self.rule:
            parts.append(f"[{self.rule}] ")
        parts.append(self.message)
        if self.remedy:
            parts.append(f"\n  remedy: {self.remedy}")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "message": self.message,
            "remedy": self.remedy,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "context": self.context,
        }


class ConfigurationError(SchemagateError):
    """Bad usage or configuration (exit code 2), kept apart from findings."""

    category = Category.CONFIGURATION_ERROR
    exit_code = 2


class BundleIntegrityError(SchemagateError):
    category = Category.BUNDLE_INTEGRITY


class SecurityViolation(SchemagateError):
    category = Category.SECURITY_VIOLATION


class ChecksumMismatch(SchemagateError):
    category = Category.CHECKSUM_MISMATCH


class MigrationRefused(SchemagateError):
    """The history and the bundle disagree (missing, out of order, failed rows)."""

    category = Category.CHECKSUM_MISMATCH


class SqlError(SchemagateError):
    category = Category.SQL_ERROR


class LockTimeout(SchemagateError):
    category = Category.LOCK_TIMEOUT


class ConnectionFailure(SchemagateError):
    category = Category.CONNECTION_ERROR


class PermissionDenied(SchemagateError):
    category = Category.PERMISSION_DENIED


MAX_LISTED_REFUSALS = 20  # in the message of a combined refusal; its context holds them all


def combined(errors: Sequence[SchemagateError], *, all_listed_by: str | None = None) -> SchemagateError:
    """Several refusals as one: the first as it is (its type, location, rule and remedy), followed
    by a line for each other one with its location, rule and message, and every one of them in
    ``context["refusals"]``.  ``all_listed_by`` names the command that shows them all.  A single
    refusal is returned unchanged."""
    first, others = errors[0], list(errors[1:])
    if not others:
        return first
    lines = [f"  - {_headline(e)}" for e in others[:MAX_LISTED_REFUSALS]]
    if len(others) > MAX_LISTED_REFUSALS:
        lines.append(f"  - … and {len(others) - MAX_LISTED_REFUSALS} more")
    if all_listed_by:
        lines.append(f"  ({all_listed_by} lists them all)")
    return type(first)(
        f"{first.message}\n  and {len(others)} more refusal(s):\n" + "\n".join(lines),
        remedy=first.remedy,
        file=first.file,
        line=first.line,
        column=first.column,
        rule=first.rule,
        category=first.category,
        context={**first.context, "refusals": [e.to_dict() for e in errors]},
    )


def _headline(error: SchemagateError) -> str:
    """``file:line: [rule] message`` on one line (``str(error)`` without the remedy)."""
    location = error.location()
    rule = f"[{error.rule}] " if error.rule else ""
    message = " ".join(error.message.split())
    return f"{location}: {rule}{message}" if location else f"{rule}{message}"


def aws_error_code(exc: BaseException, default: str = "") -> str:
    """The error code of a botocore ``ClientError`` (``"AccessDenied"``, ``"NoSuchKey"`` ...), or
    ``default`` for an exception that carries none (transport errors, anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", default))
