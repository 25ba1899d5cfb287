"""SARIF 2.1.0 (``schemagate validate --format sarif``), for GitHub code scanning and other viewers.

One run whose ``tool.driver.rules`` lists every rule schemagate has (validator.rule_catalog: id,
short and full description, help text and URI, default level, family as a tag), plus the sqlfluff
rules the findings name; one result per finding with its rule's index, its level, and a location
**relative to the repository root** (``db/migrations/V2__x.sql``, base id ``%SRCROOT%``) with line
and column, so code scanning places it on the pull request's diff.  A finding about a whole file
is placed on its line 1; a finding about the whole run (the gate's configuration) on the project's
configuration file, because code scanning refuses a result without a file.

The absolute path of the checkout is not written (``%SRCROOT%`` carries no ``uri``): the upload
action resolves it against the repository, and the document is the same on every machine.
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import quote

from validator.findings import ERROR, Finding
from validator.reports import ReportData, RepositoryPaths, tool_version
from validator.rule_catalog import CatalogRule, all_rules, lint_rule

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/schemagate/schemagate"
SRCROOT = "%SRCROOT%"

# an object of the SARIF 2.1.0 log (its schema is SARIF_SCHEMA)
SarifObject: TypeAlias = dict[str, Any]


def _level(severity: str) -> str:
    return "error" if severity == ERROR else "warning"


def _descriptor(rule: CatalogRule) -> SarifObject:
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.id.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.description},
        "help": {
            "text": f"{rule.remedy}\n\n{rule.docs}",
            "markdown": f"{rule.remedy}\n\n[{rule.id}]({rule.docs})",
        },
        "helpUri": rule.docs,
        "defaultConfiguration": {"level": _level(rule.severity), "enabled": not rule.opt_in},
        "properties": {"tags": ["schemagate", rule.family]},
    }


def _unknown_rule(finding: Finding) -> CatalogRule:
    """A rule the catalogue does not list (a test keeps that from happening): described from the finding."""
    return CatalogRule(
        id=finding.rule,
        family=finding.family,
        severity=finding.severity,
        summary=finding.rule,
        description=finding.message,
        remedy=finding.help or "see the finding",
        docs=finding.docs or INFORMATION_URI,
    )


def _location(path: str, finding: Finding) -> SarifObject:
    region: SarifObject = {"startLine": finding.line or 1}
    if finding.line is not None and finding.column is not None:
        region["startColumn"] = finding.column
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(path, safe="/"), "uriBaseId": SRCROOT},
            "region": region,
        }
    }


def render_sarif(data: ReportData, paths: RepositoryPaths) -> SarifObject:
    """The SARIF log of ``data``; ``paths`` maps findings to repository-relative paths."""
    rules = list(all_rules())
    index = {rule.id: n for n, rule in enumerate(rules)}
    for finding in data.sorted_findings():
        if finding.rule not in index:
            rule = lint_rule(finding.rule) or _unknown_rule(finding)
            index[rule.id] = len(rules)
            rules.append(rule)
    results = []
    for finding in data.sorted_findings():
        text = finding.message
        if finding.help:
            text += f"\nhelp: {finding.help}"
        result: SarifObject = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": "error" if data.is_blocking(finding) else "warning",
            "message": {"text": text},
            "locations": [_location(paths.path_of(finding), finding)],
            "properties": {"family": finding.family, "blocking": data.is_blocking(finding)},
        }
        if finding.file is None:
            result["properties"]["scope"] = "the whole run"
        elif finding.line is None:
            result["properties"]["scope"] = "the whole file"
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "schemagate",
                        "informationUri": INFORMATION_URI,
                        "version": tool_version(),
                        "semanticVersion": tool_version(),
                        "rules": [_descriptor(rule) for rule in rules],
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"description": {"text": "the repository root"}}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "properties": {"passed": data.passed, "summary": data.summary()},
                    }
                ],
                "results": results,
            }
        ],
    }
