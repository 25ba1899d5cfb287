"""The structural checks: discovery and naming, order, immutability against a base ref, parsing.

These are what ``schemagate plan/apply --migrations DIR`` runs before it builds an in-memory bundle
(no lint, no safety rules: those belong to review), and the first stage of ``schemagate validate``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from executor.bundle import Bundle, make_bundle
from executor.errors import SchemagateError
from executor.manifest import ManifestEntry
from validator.config import ValidatorConfig
from validator.discovery import Discovered, MigrationFile, discover
from validator.findings import ERROR, Finding, count_by_severity
from validator.order import check_order
from validator.parsed import ParsedFile

if TYPE_CHECKING:
    from validator.parse_cache import ParseCache


@dataclass
class StructuralResult:
    files: list[MigrationFile]  # well-named migration files, in application order
    parsed: list[ParsedFile]  # one per parsed file, same order (every file unless some were skipped)
    findings: list[Finding]  # naming, order, syntax findings, sorted by file and position
    layout: str = "flyway"  # the directory's layout (executor.layouts)
    skipped: frozenset[str] = frozenset()  # keys of the files not parsed (check_structure's ``applied``)

    def parsed_by_rel(self) -> dict[str, ParsedFile]:
        """Parsed files by ``MigrationFile.key`` (the rel path; ``rel#down`` for a down section)."""
        return {p.key: p for p in self.parsed}

    def manifest_entries(self) -> list[tuple[ManifestEntry, bytes]]:
        """Bundle entries in application order (versioned by version, repeatables by description,
        undo by version), with ``transactional`` and header settings from parsing."""
        parsed = self.parsed_by_rel()
        entries = []
        for mf in sorted(self.files, key=lambda f: (f.name.sort_key, f.rel)):
            p = parsed.get(mf.key)
            if p is None:
                entries.append((mf.manifest_entry(checked=mf.key not in self.skipped), mf.data))
            else:
                entry = mf.manifest_entry(
                    transactional=p.transactional, settings=p.settings, own_transactions=p.own_transactions
                )
                entries.append((entry, mf.data))
        return entries


def check_structure(
    config: ValidatorConfig,
    *,
    base_ref: str | None = None,
    discovered: Discovered | tuple[list[MigrationFile], list[Finding]] | None = None,
    parse_cache: ParseCache | None = None,
    applied: frozenset[str] = frozenset(),
    parse: bool = True,
    accepted: frozenset[str] | None = None,
) -> StructuralResult:
    """Discovery, order, immutability (when ``base_ref`` is given) and parsing of every file.

    ``discovered``: the result of ``discover(config.migrations)`` when the caller already read the
    files (``run_validation`` starts lint on them first), so every check sees the same bytes.

    ``applied``: keys (``MigrationFile.key``) of files the database holds as applied with these
    very bytes (``apply --migrations``): they are not parsed, as Flyway's migrate compares an
    applied file's checksum and does not judge it again; they ran on PostgreSQL already, and this
    run will not run them.  Their manifest entries say so (``ManifestEntry.checked``), and the
    executor refuses to run one.  When a file to run mentions ``CALL``, the applied files are
    parsed for the procedures they create, and only for those (a committing procedure makes its
    CALL non-transactional); their findings are not reported.
    ``parse=False``: no file is parsed (``import``, ``repair``, ``baseline``: they record names and
    checksums and run nothing); every entry is unchecked.
    ``accepted``: rel paths of the accepted history (``validator.judgement``; None: what
    ``accepted_history`` accepts).  An accepted file with BEGIN / COMMIT of its own is not refused but
    run as written (``as_written``).

    Files are parsed in this process: libpg_query parses a 500-file history in well under a second
    (see tests/test_corpus.py), less than a process pool costs to start.  ``parse_cache``
    (``validator.parse_cache``): answer unchanged files from the cache (``validate`` passes one).
    """
    found = discovered if discovered is not None else discover_migrations(config)
    files, discovery_findings = found
    layout = getattr(found, "layout", "flyway")
    findings = list(discovery_findings)
    findings += check_order(files, config)
    if base_ref is not None:
        from validator.gitref import check_immutability  # git, only with a base ref

        findings += check_immutability(files, config.migrations, base_ref, config, layout=layout)
    unparsed = [mf for mf in files if not parse or mf.key in applied]
    skipped = frozenset(mf.key for mf in unparsed)
    judged = [mf for mf in files if mf.key not in skipped] if skipped else files
    # a CALL in a file to run may call a procedure an applied file created: those are parsed
    # for their procedures alone (their findings are not this run's to judge)
    context = unparsed if parse and any(_CALL.search(mf.data) for mf in judged) else []
    if parse_cache is not None:
        parsed = [parse_cache.parse(mf) for mf in judged]
        procedures_from = [parse_cache.parse(mf) for mf in context]
        parse_cache.keep(unparsed)
        parse_cache.save()
    else:
        from validator.parse import parse_file

        parsed = [parse_file(mf) for mf in judged]
        procedures_from = [parse_file(mf) for mf in context]
    committing = set().union(*(p.committing_procedures for p in [*parsed, *procedures_from]))
    if committing:
        from validator.parse import parse_file
        from validator.parsed import ensure_trees
        from validator.transactions import mark_committing_calls

        # a CALL of a committing procedure is found in the trees: parse the tree-less hits again
        parsed = [
            ensure_trees(p) if p.trees_pending else parse_file(p.file) if _treeless(p) else p for p in parsed
        ]
        for p in parsed:
            mark_committing_calls(p, committing)
    if accepted is None and parsed:
        from validator.judgement import accepted_files

        accepted = accepted_files(config, files)
    if accepted:
        parsed = [as_written(p) if p.rel in accepted else p for p in parsed]
    for p in parsed:
        findings += p.findings
    findings.sort(key=Finding.sort_key)
    return StructuralResult(files=files, parsed=parsed, findings=findings, layout=layout, skipped=skipped)


_CALL = re.compile(rb"\bcall\b", re.IGNORECASE)
_OWN_TRANSACTION_CONTROL = "explicit-transaction-control"


def as_written(parsed: ParsedFile) -> ParsedFile:
    """An accepted-history file (``validator.judgement``) with transaction statements of its own
    (``validator.transactions``' ``explicit-transaction-control``),
    to be run as written: no ``explicit-transaction-control`` error, ``transactional`` False and
    ``own_transactions`` set (the executor sends each statement, its BEGIN and COMMIT included, as
    psql did when the file was first applied).  Any other file is returned as it is.

    Such a file is applied already wherever it is accepted history; it runs again only on a database
    that lacks it (a new environment, the rehearsal's base).  Rewriting it would change an applied
    file's checksum, and refusing it would leave those databases no way to be built.  The other
    transaction errors stay: a statement PostgreSQL refuses inside the file's own BEGIN ... COMMIT
    around the whole file fails as written too."""
    if not any(f.rule == _OWN_TRANSACTION_CONTROL for f in parsed.findings):
        return parsed
    return dataclasses.replace(
        parsed,
        findings=[f for f in parsed.findings if f.rule != _OWN_TRANSACTION_CONTROL],
        transactional=False,
        own_transactions=True,
    )


def _treeless(parsed: ParsedFile) -> bool:
    return any(s.node is None for s in parsed.statements)


def discover_migrations(config: ValidatorConfig) -> Discovered:
    """``discover`` with the configuration's layout and size limit."""
    return discover(config.migrations, layout=config.layout, max_file_bytes=config.max_file_bytes)


def bundle_from_directory(
    config: ValidatorConfig, *, applied: frozenset[str] = frozenset(), parse: bool = True
) -> Bundle:
    """An in-memory bundle of ``config.migrations`` after the structural checks only (``applied``:
    files not to parse again; ``parse=False``: none parsed; see ``check_structure``).

    Raises SchemagateError (exit 1) listing the error findings; warnings (version gaps) do not stop it.
    """
    from validator.parse_cache import ParseCache, parse_cache_directory

    # no parse trees here: a file whose checksum the parse cache knows (any earlier validate, plan
    # or apply of it) is not parsed again, and when every file is known pglast is not even imported;
    # an unknown file is read from libpg_query's JSON where no statement needs a tree (parse_file)
    cache = ParseCache(
        parse_cache_directory(config.project_root, config.lint), config.migrations, trees=False
    )
    result = check_structure(config, parse_cache=cache, applied=applied, parse=parse)
    errors = [f for f in result.findings if f.severity == ERROR]
    if errors:
        listing = "\n".join(f"  {f.location} {f.rule} {f.message}" for f in errors)
        raise SchemagateError(
            f"{config.migrations} has {len(errors)} error finding{'s' if len(errors) != 1 else ''}:"
            f"\n{listing}",
            remedy="fix the files above (`schemagate validate` shows every check with its help), "
            "then run again",
        )
    path = Path(config.migrations)
    return make_bundle(
        result.manifest_entries(),
        source={"kind": "directory", "path": str(path)},
        findings=count_by_severity(result.findings),
        origin=f"migrations {path}",
        layout=result.layout,
        extra=manifest_extra(config),
    )


def manifest_extra(config: ValidatorConfig) -> dict[str, str]:
    """Manifest keys the executor needs to run the files as they were validated."""
    search_path = config.executor.search_path
    return {"search_path": search_path} if search_path else {}
