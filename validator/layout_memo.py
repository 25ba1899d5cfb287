"""A memo of which layout ``executor.layouts.detect`` chose for a migrations directory's exact
contents, so a no-op ``schemagate apply`` does not import and run every layout again.

Detection resolves the directory with all six layouts and keeps the best (``executor.layouts``):
on a 500-file history that is about a fifth of a no-op run (every layout module imported, every
file looked at six times).  Its answer is a pure function of the tree (its paths and their bytes)
and of the layouts' code, so the memo is keyed by exactly that:

* SHA-256 over every path of the tree and the SHA-256 of its bytes (all files ``detect`` sees,
  not only the migrations), in order;
* SHA-256 over the source of ``executor/layouts/*.py`` and ``MEMO_FORMAT``: an upgrade or an edit
  of a layout forgets every answer.

A hit names the layout; ``discover`` then resolves the tree with that one layout, which gives the
resolution detection would have kept (tests/test_layout_memo.py compares them).  The memo is one
small JSON file, ``.schemagate/cache/layout.json`` under the project root (which ignores itself),
holding the answers for the last ``KEEP`` directory contents; it is written atomically, and an
unreadable or foreign file is a miss, never an error.  A directory whose layout is configured
(``--layout``, ``[tool.schemagate] layout``) is never detected, so never memoised.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from executor.layouts.base import SourceTree

MEMO_FORMAT = 1
DEFAULT_MEMO = Path(".schemagate") / "cache" / "layout.json"
KEEP = 32  # directory contents remembered (branches, worktrees)


@lru_cache(maxsize=1)
def code_key() -> str:
    """SHA-256 over the memo format and the layouts' source files."""
    from executor import layouts

    digest = hashlib.sha256(f"layout-memo {MEMO_FORMAT}\n".encode())
    for source in sorted(Path(layouts.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def tree_key(tree: SourceTree) -> str:
    """SHA-256 over the code key, then each path and the SHA-256 of its bytes."""
    digest = hashlib.sha256(code_key().encode())
    for rel in tree.paths():
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(hashlib.sha256(tree.read(rel)).digest())
    return digest.hexdigest()


def _load(memo: Path) -> dict[str, str]:
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != MEMO_FORMAT:
        return {}
    answers = data.get("answers")
    if not isinstance(answers, dict):
        return {}
    return {k: v for k, v in answers.items() if isinstance(k, str) and isinstance(v, str)}


def recall(memo: Path, key: str) -> str | None:
    """The layout remembered for ``key``, or None."""
    return _load(memo).get(key)


def remember(memo: Path, key: str, layout: str) -> None:
    """Add ``key -> layout`` (keeping the newest ``KEEP`` answers); never raises."""
    answers = _load(memo)
    answers.pop(key, None)
    answers[key] = layout
    kept = dict(list(answers.items())[-KEEP:])
    from localdb.state_dir import ignore_state_of  # only on a miss: a hit imports no localdb

    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        ignore_state_of(memo.parent)
        import tempfile  # only when writing: a no-op apply reads the memo

        fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".layout-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({"format": MEMO_FORMAT, "answers": kept}))
        os.replace(tmp, memo)
    except OSError:
        return  # a memo that cannot be written is only a slower next run
