"""``schemagate rules`` and ``schemagate explain RULE``: the rules, read from the terminal.

``rules`` lists every rule (validator.rule_catalog: the safety rules, the rehearsal's, and the
checks of the other families) with its family, its level in this project (the default, or what
``[tool.schemagate.rules]`` sets) and its summary.  ``explain RULE`` prints the rule's
documentation: for a safety rule its section of docs/rules.md (why, the lock, anti-pattern, best
practice, examples), generated from the same registry; for the others, what docs/checks.md and
docs/rehearsal.md say.  sqlfluff rules are ``lint-<CODE>`` (``explain LT01`` works too).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from executor.errors import ConfigurationError
from schemagate.console import style
from schemagate.tables import render_table


def _project_levels() -> dict[str, str]:
    """``[tool.schemagate.rules]`` of the project around the working directory ({} outside one)."""
    from validator.config import load_config

    try:
        return dict(load_config(Path.cwd()).rules)
    except ConfigurationError:
        return {}


@click.command("rules", short_help="List every rule: id, family, level, summary.")
@click.option(
    "--family", type=click.Choice(["naming", "order", "syntax", "lint", "safety", "rehearsal", "integrity"])
)
@click.option("--json", "as_json", is_flag=True, help="print the rules as JSON")
def rules_command(family: str | None, as_json: bool) -> None:
    """List every rule schemagate reports, with its family, its level here and its summary
    (`schemagate explain RULE` shows one rule's documentation)."""
    from validator.rule_catalog import all_rules

    levels = _project_levels()
    rules = [r for r in all_rules() if family is None or r.family == family]
    if as_json:
        data = [
            {
                "id": r.id,
                "family": r.family,
                "default": r.level,
                "level": levels.get(r.id, r.level),
                "summary": r.summary,
                "docs": r.docs,
            }
            for r in rules
        ]
        click.echo(json.dumps(data, indent=2))
        return
    rows = []
    for r in rules:
        level = levels.get(r.id)
        shown = r.level if level is None else f"{level} (default {r.level})"
        rows.append([r.id, r.family, shown, r.summary])
    click.echo(render_table(["Rule", "Family", "Level", "Summary"], rows))
    if family in (None, "lint"):
        click.echo(
            "\nlint-<CODE>: the sqlfluff rules (`schemagate explain LT01`); levels: [tool.schemagate.lint]"
        )
    click.echo(f"\n{len(rules)} rules; `schemagate explain RULE` shows one rule's documentation")


def explanation(rule_id: str) -> str:
    """The documentation of ``rule_id`` as Markdown; ConfigurationError (exit 2) for an unknown id."""
    from validator.rule_catalog import LINT_RULE, closest_rules, find_rule

    if not LINT_RULE.match(rule_id) and LINT_RULE.match(f"lint-{rule_id.upper()}"):
        rule_id = f"lint-{rule_id.upper()}"
    rule = find_rule(rule_id)
    if rule is None:
        close = closest_rules(rule_id)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigurationError(
            f"no rule has the id {rule_id!r}", remedy=f"{hint}`schemagate rules` lists them all"
        )
    if rule.family == "safety":
        from validator.safety.docs import rule_markdown
        from validator.safety.registry import REGISTRY

        return rule_markdown(REGISTRY[rule.id]).rstrip() + f"\n\nDocs: {rule.docs}\n"
    return (
        f"## {rule.id}\n\n"
        f"{rule.summary}\n\n"
        f"- family: {rule.family}\n"
        f"- default severity: **{rule.severity}**"
        + (" (set its level in [tool.schemagate.rules])" if rule.configurable else "")
        + "\n\n"
        f"**Why.** {rule.description}\n\n"
        f"**What to do.** {rule.remedy}\n\n"
        f"Docs: {rule.docs}\n"
    )


@click.command("explain", short_help="Show a rule's documentation.")
@click.argument("rule_id", metavar="RULE")
def explain_command(rule_id: str) -> None:
    """Show the documentation of RULE (an id from `schemagate rules`, e.g. ban-drop-column)."""
    for line in explanation(rule_id).splitlines():
        click.echo(style(line, None, bold=True) if line.startswith("#") else line)


def register(group: click.Group) -> None:
    """Add `schemagate rules` and `schemagate explain` to the group."""
    group.add_command(rules_command)
    group.add_command(explain_command)
