"""A file cache of what ``validator.parse.parse_file`` found, so an unchanged migration's checks
are not computed again on every run.

What is cached is everything ``parse_file`` derives from a file *except* the pglast parse tree:
each statement's position and end, why it cannot run in a transaction, the file's
``transactional`` flag, its header settings, the plain ``BEGIN; ... COMMIT;`` wrapper, the
procedures it creates that commit, and its syntax findings.  The parse tree is not stored: pglast
builds it from the text faster than pickle restores it (measured on the 500-file history of
bench/validate.py: 0.13 s against 0.20 s), so a hit re-runs ``parse_sql`` alone and skips the
rest (the executor's lexer over the whole file, the PL/pgSQL bodies, the transaction rules),
about half of ``parse_file``.  A hit gives exactly the ``ParsedFile`` a fresh parse gives
(tests/test_parse_cache.py compares them field by field, trees included).

An entry is keyed by what decides ``parse_file``'s answer:

* the file's checksum (``executor.checksum.file_checksum``), its section (a dbmate file holds up
  and down), its path (findings name it) and what its layout says about transactions;
* whether its bytes hold a control character (then the executor-split check is skipped);
* pglast's version and a hash of the parsing code (``validator/parse.py``, ``parsed.py``,
  ``transactions.py``, ``discovery.py``, ``executor/headers.py``, ``executor/sqltext.py``) and
  ``CACHE_FORMAT``: an upgrade or an edit of the parser invalidates every entry.

Layout: ``<dir>/<options key[:24]>/<hash of the migrations directory[:16]>.json``, one pack of
entries named ``<checksum>-<file key[:32]>`` per migrations directory (see ``ParseCache``); the
default directory is ``.schemagate/cache/parse`` under the project root, which ignores itself, and
``[tool.schemagate.lint] cache = false`` turns it off with the lint cache.  A pack is written
atomically and an unreadable pack or an entry that does not fit is a miss, never an error; the
packs of options nobody used for a month are pruned like the lint cache's.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from executor.sqltext import find_control_character
from localdb.state_dir import ignore_state_of
from validator.findings import Finding
from validator.lint_cache import prune, write_atomically

if TYPE_CHECKING:
    from validator.discovery import MigrationFile
    from validator.parsed import ParsedFile

CACHE_FORMAT = 1
DEFAULT_CACHE_DIR = Path(".schemagate") / "cache" / "parse"
# the modules whose code decides what parse_file returns
_PARSING_MODULES = (
    "validator.parse",
    "validator.parsed",
    "validator.transactions",
    "executor.headers",
    "executor.sqltext",
    "validator.discovery",
)


@lru_cache(maxsize=1)
def options_key() -> str:
    """SHA-256 over the cache format, pglast's version (its ``__init__.py``, which holds
    ``__version__``) and the parsing code, read from the files without importing them: a run whose
    files are all cache hits never imports pglast."""
    from importlib.util import find_spec

    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for name in ("pglast", *_PARSING_MODULES):
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"no module named {name}")
        digest.update(name.encode())
        digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()


def file_key(mf: MigrationFile) -> str:
    """What besides the checksum decides the parse of ``mf``."""
    payload = json.dumps(
        [mf.rel, mf.section, mf.layout_transactional, find_control_character(mf.data) is None],
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def to_entry(parsed: ParsedFile) -> dict[str, Any]:
    """``parsed`` as a JSON-able entry (everything but the parse tree)."""
    return {
        "statements": [
            [s.index, s.start, s.end, s.line, s.column, s.non_transactional] for s in parsed.statements
        ],
        "transactional": parsed.transactional,
        "findings": [f.to_dict() for f in parsed.findings],
        "settings": parsed.settings,
        "committing_procedures": sorted(parsed.committing_procedures),
        "wrapper": parsed.wrapper is not None,
    }


def from_entry(
    mf: MigrationFile, entry: dict[str, Any], *, trees: bool | Literal["lazy"] = True
) -> ParsedFile | None:
    """The ParsedFile ``entry`` describes, with the parse tree rebuilt from the text; None when the
    entry does not fit the file (a miss).  ``trees=False``: every ``Statement.node`` is None and
    pglast is not called (``apply --migrations`` needs the flags, not the trees).  ``"lazy"``: no
    trees either, but ``validator.parsed.ensure_trees`` builds them when a check needs them
    (``validate``: the safety rules need the trees of the judged files, and of the accepted history
    only when its catalog is not cached, ``validator.safety.catalog_cache``)."""
    from validator.parsed import ParsedFile, Statement

    text = mf.text
    if text is None:
        return None
    rows = entry["statements"]
    nodes: list[Any] = [None] * len(rows)
    if rows and trees is True:
        from pglast.parser import ParseError, parse_sql

        try:
            nodes = [raw.stmt for raw in parse_sql(text)]
        except ParseError:
            return None
        if len(nodes) != len(rows):
            return None
    statements = [
        Statement(
            index=index,
            text=text[start:end],
            node=nodes[index],
            start=start,
            end=end,
            line=line,
            column=column,
            non_transactional=reason,
        )
        for index, start, end, line, column, reason in rows
    ]
    wrapper = (statements[0], statements[-1]) if entry["wrapper"] and len(statements) >= 2 else None
    return ParsedFile(
        file=mf,
        text=text,
        statements=statements,
        transactional=bool(entry["transactional"]),
        findings=[Finding(**f) for f in entry["findings"]],
        settings={str(k): str(v) for k, v in entry["settings"].items()},
        committing_procedures=set(entry["committing_procedures"]),
        wrapper=wrapper,
        trees_pending=trees == "lazy" and bool(rows),
    )


class ParseCache:
    """Parse results by file checksum for one migrations directory (``directory=None``: no caching,
    every file is parsed).

    The entries live in one pack file per migrations directory, read once and written once (when a
    file was parsed): 500 separate entry files cost more to write than the parsing they save.  The
    pack written holds the entries this run used, so it never grows past the directory's files.
    """

    def __init__(
        self, directory: Path | None, migrations: Path | str = "", *, trees: bool | Literal["lazy"] = True
    ) -> None:
        # False, "lazy": hits carry no parse trees (Statement.node is None), see from_entry
        self.trees = trees
        self.root = Path(directory) if directory is not None else None
        self.key = options_key() if directory is not None else ""
        where = hashlib.sha256(str(migrations).encode("utf-8")).hexdigest()[:16]
        self.path = self.root / self.key[:24] / f"{where}.json" if self.root is not None else None
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._pack: dict[str, Any] | None = None  # the entries on disk, read on first use
        self._used: dict[str, Any] = {}  # the entries of this run (hits and new ones)
        self._kept: list[MigrationFile] = []  # files not parsed in this run whose entries stay (keep)

    def _load(self) -> dict[str, Any]:
        if self._pack is None:
            self._pack = {}
            if self.path is not None:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    data = None
                if (
                    isinstance(data, dict)
                    and data.get("key") == self.key
                    and isinstance(data.get("entries"), dict)
                ):
                    self._pack = data["entries"]
        return self._pack

    @staticmethod
    def _name(mf: MigrationFile) -> str:
        return f"{mf.checksum}-{file_key(mf)[:32]}"

    def _get(self, mf: MigrationFile, name: str) -> ParsedFile | None:
        entry = self._load().get(name)
        try:
            parsed = from_entry(mf, entry, trees=self.trees) if isinstance(entry, dict) else None
        except (ValueError, KeyError, TypeError):
            parsed = None
        if parsed is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[name] = entry
        return parsed

    def parse(self, mf: MigrationFile) -> ParsedFile:
        """``parse_file(mf)``, answered from the cache when it can be."""
        if self.path is None:
            self.misses += 1
            parsed = None
        else:
            name = self._name(mf)  # once per file: a miss files the new entry under the same name
            parsed = self._get(mf, name)
        if parsed is None:
            from validator.parse import parse_file

            parsed = parse_file(mf, trees=self.trees is not False)
            if self.path is not None and mf.text is not None:
                self._used[name] = to_entry(parsed)
        return parsed

    def keep(self, files: list[MigrationFile]) -> None:
        """Keep the entries of ``files`` (not parsed in this run) in the pack this run writes, if it
        writes one, so that a run that skipped them does not make the next one parse them again."""
        self._kept += files

    def _keep_entries(self) -> None:
        pack = self._load()
        for mf in self._kept:
            name = self._name(mf)
            entry = pack.get(name)
            if isinstance(entry, dict):
                self._used.setdefault(name, entry)

    def save(self) -> None:
        """Write the pack when this run parsed a file (atomically: a parallel build never reads half
        of one), and prune the packs of parser versions nobody used for a month."""
        if self.path is None or self.root is None:
            return
        if self.misses:
            self._keep_entries()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                ignore_state_of(self.path.parent)  # the default cache lies in .schemagate/: never committed
                # dumps, not dump: json.dump encodes in Python, chunk by chunk (100 ms for 500 files)
                write_atomically(
                    self.path, json.dumps({"key": self.key, "entries": self._used}, separators=(",", ":"))
                )
                self.writes += 1
            except OSError:
                pass  # a read-only or full disk makes the cache useless, never the validation wrong
        prune(self.root, {self.key})


def parse_cache_directory(project_root: Path, lint_settings: dict[str, Any]) -> Path | None:
    """``<project_root>/.schemagate/cache/parse``, or None when ``[tool.schemagate.lint] cache = false``."""
    if lint_settings.get("cache", True) is False:
        return None
    return Path(project_root) / DEFAULT_CACHE_DIR
