"""What the review checks judge and what they accept as history (``judgement``): with a base ref,
the migrations changed since it; otherwise those above ``[tool.schemagate] accepted_history``.
Light enough for ``apply --migrations``, which needs the accepted history alone (``accepted_files``):
an accepted file that runs BEGIN and COMMIT of its own is run as written on a database that lacks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor.errors import ConfigurationError
from executor.naming import UNDO, VERSIONED, Version
from validator.config import ValidatorConfig

if TYPE_CHECKING:
    from validator.discovery import MigrationFile
    from validator.gitref import MigrationChanges


@dataclass(frozen=True)
class Judgement:
    """Which migration files the review checks (safety rules, lint, rehearsal) judge.

    ``judged``: forward migrations (versioned and repeatable) added or edited by this change;
    ``accepted``: accepted history, checked structurally only; ``down_scripts``: down scripts that
    are not accepted history, parsed and bundled but never judged.  ``basis`` says why the
    accepted ones are accepted, for the reports.
    """

    judged: frozenset[str]
    accepted: frozenset[str]
    down_scripts: frozenset[str]
    basis: str | None = None
    changes: MigrationChanges | None = None  # with a base ref


def resolve_accepted_history(config: ValidatorConfig, files: list[MigrationFile]) -> Version | None:
    """The version ``accepted_history`` names, which must be the version of a versioned migration
    on disk; ConfigurationError (exit 2) naming the closest versions otherwise."""
    wanted = config.accepted_history
    if wanted is None:
        return None
    versions = sorted(
        {mf.name.version for mf in files if mf.name.kind == VERSIONED and mf.name.version is not None}
    )
    try:
        parsed = Version.parse(wanted)
    except ValueError:
        parsed = None
    for version in versions:
        if version == parsed or version.text == wanted:
            return version
    import difflib  # only to name the closest versions of a wrong one

    close = difflib.get_close_matches(wanted, [v.text for v in versions], n=3)
    if parsed is not None:  # the versions on either side of it
        below = [v for v in versions if v < parsed][-1:]
        above = [v for v in versions if v > parsed][:1]
        close = list(dict.fromkeys([*(v.text for v in below + above), *close]))
    hint = f"the closest versions are {', '.join(close)}; " if close else ""
    raise ConfigurationError(
        f"[tool.schemagate] accepted_history = {wanted!r}: no versioned migration in "
        f"{config.migrations} has this version"
        + (f" (judged with the configuration of {config.gate_source})" if config.gate_source else ""),
        remedy=f"{hint}set accepted_history to the version of the last migration that is already applied "
        "everywhere (it and every migration before it are then not judged again)",
        file="pyproject.toml",
    )


def judgement(config: ValidatorConfig, files: list[MigrationFile], base_ref: str | None) -> Judgement:
    """What the review checks judge (see Judgement): with a base ref, what changed since it;
    otherwise what lies above ``accepted_history``."""
    accepted_version = resolve_accepted_history(config, files)
    forward = {mf.rel for mf in files if mf.name.kind != UNDO}
    down = {mf.rel for mf in files if mf.name.kind == UNDO}
    if base_ref is not None:
        from validator.gitref import changes_since

        changes = changes_since(files, config.migrations, base_ref, config.layout)
        accepted = {mf.rel for mf in files if mf.rel not in changes.changed}
        return Judgement(
            judged=frozenset(forward - accepted),
            accepted=frozenset(accepted),
            down_scripts=frozenset(down - accepted),
            basis=f"unchanged since {base_ref}",
            changes=changes,
        )
    if accepted_version is not None:
        accepted = {
            mf.rel
            for mf in files
            if mf.name.kind in (VERSIONED, UNDO)
            and mf.name.version is not None
            and mf.name.version <= accepted_version
        }
        return Judgement(
            judged=frozenset(forward - accepted),
            accepted=frozenset(accepted),
            down_scripts=frozenset(down - accepted),
            basis=f"accepted_history = {accepted_version.text}",
        )
    return Judgement(judged=frozenset(forward), accepted=frozenset(), down_scripts=frozenset(down))


def accepted_files(config: ValidatorConfig, files: list[MigrationFile]) -> frozenset[str]:
    """The rel paths ``accepted_history`` accepts (empty when it is not set), as ``judgement`` without
    a base ref has them."""
    if config.accepted_history is None:
        return frozenset()
    return judgement(config, files, None).accepted
