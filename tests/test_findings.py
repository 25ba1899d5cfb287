"""The one policy for which findings block the bundle (``blocking_severity``)."""

from __future__ import annotations

from validator.findings import ERROR, WARNING, Finding, blocking_findings, has_errors, is_blocking


def finding(rule: str, severity: str) -> Finding:
    return Finding(
        rule=rule,
        family="safety",
        severity=severity,
        file="V12__add_orders_status.sql",
        line=4,
        column=1,
        message="ALTER TABLE orders ADD COLUMN status text NOT NULL takes ACCESS EXCLUSIVE",
    )


def test_errors_always_block_and_warnings_only_when_blocking_severity_is_warning() -> None:
    error, warning = finding("adding-required-field", ERROR), finding("prefer-bigint", WARNING)
    assert is_blocking(error) and is_blocking(error, ERROR) and is_blocking(error, WARNING)
    assert not is_blocking(warning) and not is_blocking(warning, ERROR) and is_blocking(warning, WARNING)

    findings = [warning, error, warning]
    assert blocking_findings(findings) == [error]
    assert blocking_findings(findings, WARNING) == findings
    assert has_errors(findings) and not has_errors([warning]) and has_errors([warning], WARNING)
    assert not has_errors([], WARNING)
