"""Applied migrations are immutable: compare the migrations directory with a git base ref.

``schemagate validate --base-ref origin/main`` (in a CodeBuild PR build the ref comes from
``CODEBUILD_WEBHOOK_BASE_REF``, e.g. ``refs/heads/main``).  Findings (family ``order``, errors):

- ``migration-modified``: a versioned file that exists on the base ref has different content
  (checksums compare, so CRLF/BOM-only changes are not modifications);
- ``migration-deleted``: a versioned file that exists on the base ref is gone;
- ``migration-renamed``: a versioned file of the base ref is gone and a new file holds its content;
- ``version-not-increasing``: a new versioned file's version is not greater than the highest
  version on the base ref (unless ``out_of_order = true``).

Repeatable (``R__``) files are meant to change and undo (``U``) files are only run on request, so
both may be edited; their deletion is not an error either.

"Exists on the base ref" is judged at the merge base of ``HEAD`` and the ref when git can compute
it, so a migration merged to the base branch after this branch was cut does not count as deleted
here; versions are compared with the ref's tip, which is what the branch will be merged into.
Git runs a fixed handful of processes (resolve, merge-base, ls-tree, one ``cat-file --batch``),
never one per file.

The same comparison tells validate what to judge (``changes_since``: the files added, edited or
deleted since the ref; everything else is accepted history), and ``project_files_at_ref`` reads
the project's own files (pyproject.toml, sqlfluff configuration) as the ref has them, for the
gate's configuration (``validator.gate_config``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from executor import layouts
from executor.checksum import file_checksum
from executor.errors import ConfigurationError
from executor.manifest import UP
from executor.naming import VERSIONED, MigrationName, Version
from validator.config import ValidatorConfig
from validator.discovery import NAMING_DOCS, MigrationFile
from validator.findings import ERROR, Finding

FAMILY = "order"
BASE_REF_ENV = "CODEBUILD_WEBHOOK_BASE_REF"


def resolve_base_ref(cli_value: str | None) -> str | None:
    """The base ref to compare with: the CLI value, else ``$CODEBUILD_WEBHOOK_BASE_REF`` (set by
    CodeBuild for pull-request builds), else None (no immutability check)."""
    for value in (cli_value, os.environ.get(BASE_REF_ENV)):
        if value and value.strip():
            return value.strip()
    return None


# the answers of read-only git queries during one validation (``one_run``): the gate, the judgement
# and the immutability check each find the repository, the ref's commit and the merge base again
_ANSWERS: dict[tuple[str, tuple[str, ...], bytes | None], subprocess.CompletedProcess[bytes]] | None = None
_QUERIES = (("rev-parse", "--show-toplevel"), ("cat-file", "--batch-check"), ("merge-base", "HEAD"))


@contextmanager
def one_run() -> Iterator[None]:
    """Within: each read-only git query (the work tree's top, a ref's commit, the merge base with
    HEAD) runs once per repository and arguments; none of them can change while one validation runs."""
    global _ANSWERS
    outer, _ANSWERS = _ANSWERS, {}
    try:
        yield
    finally:
        _ANSWERS = outer


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    key = (str(repo), args, stdin)
    if _ANSWERS is not None and key in _ANSWERS:
        return _ANSWERS[key]
    try:
        argv = ["git", "-C", str(repo), *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise ConfigurationError(
            "git is not installed, so --base-ref cannot be checked",
            remedy="install git, or run without --base-ref",
        ) from None
    if _ANSWERS is not None and args[:2] in _QUERIES:
        _ANSWERS[key] = result
    return result


def repo_root_of(path: Path) -> Path:
    """The top of the git work tree holding ``path``; ConfigurationError when there is none."""
    probe = path if path.is_dir() else path.parent
    result = _git(probe, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise ConfigurationError(
            f"{path} is not inside a git repository, so --base-ref cannot be compared with it",
            remedy="run validate in a git clone (CodeBuild: use a git-clone source, not a zip), "
            "or drop --base-ref",
        )
    return Path(result.stdout.decode().strip())


def _candidates(ref: str) -> list[str]:
    """Spellings to try for a ref: as given; a branch as the remote-tracking branch too."""
    names = [ref]
    branch = None
    if ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
        names.append(branch)
    elif not ref.startswith(("refs/", "origin/")):
        branch = ref
    if branch:
        names += [f"origin/{branch}", f"refs/remotes/origin/{branch}"]
    return names


def _fetch_hint(ref: str) -> str:
    branch = ref.removeprefix("refs/heads/").removeprefix("origin/")
    return (
        f"fetch it first: `git fetch origin {branch}` (in a shallow CodeBuild clone: "
        f"`git fetch --depth=50 origin {branch}:refs/remotes/origin/{branch}`), "
        f"then pass --base-ref origin/{branch}"
    )


def resolve_commit(repo_root: Path, base_ref: str) -> str:
    """The commit id of ``base_ref`` (trying ``origin/<branch>`` too); ConfigurationError if unknown."""
    if base_ref.startswith("-") or any(c in base_ref for c in "\n\0 "):
        raise ConfigurationError(
            f"{base_ref!r} is not a git ref", remedy="pass a branch, tag or commit, e.g. origin/main"
        )
    names = _candidates(base_ref)
    query = "".join(f"{n}^{{commit}}\n" for n in names).encode()
    result = _git(repo_root, "cat-file", "--batch-check", stdin=query)
    for line in result.stdout.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "commit":
            return parts[0]
    raise ConfigurationError(
        f"git ref {base_ref!r} is unknown in {repo_root} (tried {', '.join(names)})",
        remedy=_fetch_hint(base_ref),
    )


def _merge_base(repo_root: Path, commit: str) -> str | None:
    result = _git(repo_root, "merge-base", "HEAD", commit)
    if result.returncode != 0:  # no HEAD yet, unrelated histories, or a shallow clone
        return None
    return result.stdout.decode().strip() or None


def _prefix(repo_root: Path, migrations_dir: Path) -> str:
    try:
        rel = Path(migrations_dir).resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        raise ConfigurationError(
            f"migrations directory {migrations_dir} is outside the git repository {repo_root}",
            remedy="run validate from the repository that holds the migrations, or drop --base-ref",
        ) from None
    return "" if rel == "." else rel + "/"


@lru_cache(maxsize=16)
def _tree_blobs(repo_root: str, commit: str, prefix: str) -> dict[str, bytes]:
    """rel -> bytes of every regular, non-hidden file under ``prefix`` at ``commit`` (immutable, so
    cached); the layout decides which of them are migrations."""
    root = Path(repo_root)
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    if prefix:
        args += ["--", prefix]
    listing = _git(root, *args)
    if listing.returncode != 0:
        raise ConfigurationError(
            f"git could not list {prefix or '.'} at {commit}: "
            f"{listing.stderr.decode(errors='replace').strip()}",
            remedy="make sure the base ref's history is fetched (`git fetch origin main`)",
        )
    blobs: list[tuple[str, str]] = []
    for entry in listing.stdout.decode("utf-8", errors="surrogateescape").split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, sha = meta.split()
        rel = path[len(prefix) :]
        if kind != "blob" or mode == "120000" or any(p.startswith(".") for p in rel.split("/")):
            continue
        blobs.append((rel, sha))
    if not blobs:
        return {}
    batch = _git(root, "cat-file", "--batch", stdin="".join(f"{sha}\n" for _, sha in blobs).encode())
    out = batch.stdout
    contents: dict[str, bytes] = {}
    pos = 0
    for rel, _sha in blobs:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        if len(header) != 3:  # "<sha> missing": a partial clone without the blob
            raise ConfigurationError(
                f"git has no content for {prefix}{rel} at {commit[:12]} (a partial or shallow clone)",
                remedy="fetch the base ref with its blobs: `git fetch origin main` (without --filter)",
            )
        size = int(header[2])
        contents[rel] = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1  # the content is followed by a newline
    return contents


@dataclass(frozen=True)
class _Tree:
    checksums: dict[str, str]  # rel -> checksum of every migration file of the layout
    names: dict[str, MigrationName]  # rel -> its (versioned, where a file holds up and down) name


@lru_cache(maxsize=16)
def _tree_checksums(repo_root: str, commit: str, prefix: str, layout: str | None = None) -> _Tree:
    """The migrations of the tree at ``commit`` as ``layout`` (detected when None) resolves them."""
    blobs = _tree_blobs(repo_root, commit, prefix)
    resolution = layouts.resolve(layouts.MappingTree(blobs), layout)
    checksums: dict[str, str] = {}
    names: dict[str, MigrationName] = {}
    for m in resolution.migrations:
        checksums[m.rel] = file_checksum(blobs[m.rel])
        if m.rel not in names or m.kind == VERSIONED:
            names[m.rel] = m.name
    return _Tree(checksums=checksums, names=names)


def files_at_ref(
    repo_root: Path, base_ref: str, migrations_dir: Path, layout: str | None = None
) -> dict[str, str]:
    """Migration files under ``migrations_dir`` at ``base_ref``: rel path -> checksum (of the blob
    bytes, as executor.checksum.file_checksum computes it).  Only well-named migrations are listed."""
    commit = resolve_commit(repo_root, base_ref)
    return _tree_checksums(str(repo_root), commit, _prefix(repo_root, migrations_dir), layout).checksums


@dataclass
class _RefState:
    tip: dict[str, str]  # at the ref itself
    base: dict[str, str]  # at the merge base with HEAD (the tip when there is none)
    names: dict[str, MigrationName]  # of the files of both


def _ref_state(migrations_dir: Path, base_ref: str, layout: str | None = None) -> _RefState:
    repo_root = repo_root_of(Path(migrations_dir))
    commit = resolve_commit(repo_root, base_ref)
    prefix = _prefix(repo_root, migrations_dir)
    tip = _tree_checksums(str(repo_root), commit, prefix, layout)
    merge_base = _merge_base(repo_root, commit)
    base = (
        tip if merge_base in (None, commit) else _tree_checksums(str(repo_root), merge_base, prefix, layout)
    )
    return _RefState(tip=tip.checksums, base=base.checksums, names={**base.names, **tip.names})


def new_files(
    files: list[MigrationFile], migrations_dir: Path, base_ref: str | None, layout: str | None = None
) -> set[str]:
    """Rel paths of the migration files that are not on the base ref (all of them without one)."""
    if base_ref is None:
        return {mf.rel for mf in files}
    state = _ref_state(migrations_dir, base_ref, layout)
    return {mf.rel for mf in files if mf.rel not in state.tip and mf.rel not in state.base}


def check_immutability(
    files: list[MigrationFile],
    migrations_dir: Path,
    base_ref: str | None,
    config: ValidatorConfig | None = None,
    *,
    layout: str | None = None,
) -> list[Finding]:
    """Findings for versioned files changed, deleted or renamed since ``base_ref``, and for new
    versions that do not come after the ref's highest version.  ``layout``: the working tree's, so
    the ref's files are read the same way (detected when None)."""
    if base_ref is None:
        return []
    state = _ref_state(migrations_dir, base_ref, layout)
    out_of_order = bool(config and config.out_of_order)
    findings: list[Finding] = []
    current = {mf.rel: mf for mf in files}

    def finding(rule: str, rel: str, message: str, help_: str) -> Finding:
        return Finding(
            rule=rule,
            family=FAMILY,
            severity=ERROR,
            file=rel,
            line=None,
            column=None,
            message=message,
            help=help_,
            docs=NAMING_DOCS,
        )

    # modified
    for mf in files:
        if mf.name.kind != VERSIONED or mf.section not in (None, UP):
            continue
        recorded = state.tip.get(mf.rel) or state.base.get(mf.rel)
        if recorded is not None and recorded != mf.checksum:
            findings.append(
                finding(
                    "migration-modified",
                    mf.rel,
                    f"{mf.rel} was changed after it was merged to {base_ref} "
                    f"(checksum {recorded[:12]} there, "
                    f"{mf.checksum[:12]} here); databases that already applied it would not get the change, "
                    "and the executor refuses the changed checksum (drift)",
                    f"restore it (`git checkout {base_ref} -- <path>`) and put the change into a new "
                    "migration "
                    "(`schemagate new <description>`)",
                )
            )

    # deleted or renamed: versioned files at the merge base that are gone now
    new_by_checksum: dict[str, list[MigrationFile]] = {}
    for mf in files:
        if mf.rel not in state.tip and mf.rel not in state.base:
            new_by_checksum.setdefault(mf.checksum, []).append(mf)
    renamed_to: set[str] = set()
    for rel, checksum in sorted(state.base.items()):
        if rel in current:
            continue
        old = state.names.get(rel)
        if old is None or old.kind != VERSIONED:
            continue
        twins = new_by_checksum.get(checksum)
        if twins:
            target = twins[0]
            renamed_to.add(target.rel)
            findings.append(
                finding(
                    "migration-renamed",
                    target.rel,
                    f"{target.rel} is {rel} of {base_ref} renamed; databases record migrations by "
                    "version and "
                    "name, so the executor would apply it again",
                    f"keep the name {rel}: `git mv {target.rel} {rel}`",
                )
            )
        else:
            findings.append(
                finding(
                    "migration-deleted",
                    rel,
                    f"{rel} exists on {base_ref} but was deleted; databases that applied it keep its "
                    "changes and "
                    "the executor refuses a history whose applied version is missing",
                    f"restore it (`git checkout {base_ref} -- <path>`); to reverse it, add a new migration",
                )
            )

    # new versions must come after the highest version already on the ref
    highest = _highest_version(state.tip, state.names)
    if highest is not None and not out_of_order:
        version_text, highest_rel = highest
        for mf in files:
            if (
                mf.name.kind != VERSIONED
                or mf.rel in renamed_to
                or mf.rel in state.tip
                or mf.rel in state.base
                or mf.name.version is None
            ):
                continue
            if mf.name.version <= version_text:
                findings.append(
                    finding(
                        "version-not-increasing",
                        mf.rel,
                        f"{mf.rel} is new but its version {mf.name.version} is not greater than "
                        f"{highest_rel}, the highest version on {base_ref}; databases already past that "
                        "version would refuse it (out of order)",
                        "renumber it after the highest version (`schemagate new <description>` picks "
                        "the next "
                        "number), or set out_of_order = true under [tool.schemagate] if applying it late "
                        "is intended",
                    )
                )
    return findings


def _highest_version(tree: dict[str, str], names: dict[str, MigrationName]) -> tuple[Version, str] | None:
    best: tuple[Version, str] | None = None
    for rel in tree:
        name = names.get(rel)
        if name is None or name.kind != VERSIONED or name.version is None:
            continue
        if best is None or name.version > best[0]:
            best = (name.version, rel)
    return best


# -- what changed since the base ref, and the project's files there --------------------------------


@dataclass(frozen=True)
class MigrationChanges:
    """Migration files this change adds or edits (``changed``) and removes (``deleted``), relative
    to the base ref: a file is unchanged when its content equals the merge base's or the tip's."""

    changed: frozenset[str]
    deleted: frozenset[str]

    @property
    def any(self) -> bool:
        return bool(self.changed or self.deleted)


def changes_since(
    files: list[MigrationFile], migrations_dir: Path, base_ref: str, layout: str | None = None
) -> MigrationChanges:
    """What this change does to the migrations directory since ``base_ref`` (see MigrationChanges);
    ``layout``: the working tree's, so the ref's files are read the same way (detected when None)."""
    state = _ref_state(migrations_dir, base_ref, layout)
    current = {mf.rel for mf in files}
    changed = {mf.rel for mf in files if mf.checksum not in (state.base.get(mf.rel), state.tip.get(mf.rel))}
    deleted = {rel for rel in state.base if rel not in current}
    return MigrationChanges(changed=frozenset(changed), deleted=frozenset(deleted))


@dataclass(frozen=True)
class ProjectFilesAtRef:
    """Files of the project (paths relative to the project root) as the base ref has them.

    ``tip``: at the ref itself, what is in force; ``before``: at the merge base with HEAD, what this
    change started from.  A path absent there is left out.  A path outside the git repository is not
    versioned, so no change can touch it: both hold its content on disk.
    """

    ref: str
    commit: str
    tip: dict[str, bytes]
    before: dict[str, bytes]


def _read_blobs(repo_root: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """The content of each path (relative to the repository root) at ``commit``: one git process."""
    paths = [p for p in paths if "\n" not in p]
    if not paths:
        return {}
    batch = _git(repo_root, "cat-file", "--batch", stdin="".join(f"{commit}:{p}\n" for p in paths).encode())
    out = batch.stdout
    found: dict[str, bytes] = {}
    pos = 0
    for path in paths:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) != 3:  # "<object> missing" (or ambiguous): not at this commit
            continue
        size = int(header[2])
        if header[1] == b"blob":
            found[path] = out[pos : pos + size]
        pos += size + 1  # the content is followed by a newline
    return found


def project_files_at_ref(
    project_root: Path, migrations_dir: Path, base_ref: str, rels: list[str]
) -> ProjectFilesAtRef:
    """``rels`` (relative to ``project_root``) at the base ref's tip and at its merge base with HEAD."""
    repo_root = repo_root_of(Path(migrations_dir))
    commit = resolve_commit(repo_root, base_ref)
    merge_base = _merge_base(repo_root, commit) or commit
    in_repo: dict[str, str] = {}
    unversioned: dict[str, bytes] = {}
    top = repo_root.resolve()
    for rel in rels:
        path = (Path(project_root) / rel).resolve()
        try:
            in_repo[rel] = path.relative_to(top).as_posix()
        except ValueError:
            if path.is_file():
                unversioned[rel] = path.read_bytes()

    def at(revision: str) -> dict[str, bytes]:
        blobs = _read_blobs(repo_root, revision, list(in_repo.values()))
        return {rel: blobs[p] for rel, p in in_repo.items() if p in blobs} | unversioned

    tip = at(commit)
    before = tip if merge_base == commit else at(merge_base)
    return ProjectFilesAtRef(ref=base_ref, commit=commit, tip=tip, before=before)
