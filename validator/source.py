"""Where the migrations came from, for the bundle manifest's ``source``.

CodeBuild variables win (they describe the build the approver will see); otherwise git is asked.
Nothing here fails a validation: a source that cannot be determined is simply left out.

| key | CodeBuild | git |
|---|---|---|
| repository | CODEBUILD_SOURCE_REPO_URL | `git remote get-url origin` |
| commit | CODEBUILD_RESOLVED_SOURCE_VERSION (or CODEBUILD_SOURCE_VERSION if a SHA) | `git rev-parse HEAD` |
| branch | CODEBUILD_WEBHOOK_HEAD_REF (refs/heads/ stripped) | `git rev-parse --abbrev-ref HEAD` |
| base_ref | CODEBUILD_WEBHOOK_BASE_REF | the `--base-ref` given |
| pull_request | CODEBUILD_WEBHOOK_TRIGGER `pr/N` | |
| build_id | CODEBUILD_BUILD_ID | |
| initiator | CODEBUILD_INITIATOR (e.g. `codepipeline/<name>`) | |
| dirty | | true when the migrations directory has uncommitted changes |

Credentials embedded in a repository URL (``https://user:token@host/...``) are removed: the
manifest is shown to approvers and stored with the artifact.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def scrub_url(url: str) -> str:
    """Remove user:password from a URL (``git@host:repo`` style remotes are kept as they are)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _strip_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def codebuild_source(env: Mapping[str, str]) -> dict[str, object]:
    source: dict[str, object] = {}
    if env.get("CODEBUILD_SOURCE_REPO_URL"):
        source["repository"] = scrub_url(env["CODEBUILD_SOURCE_REPO_URL"])
    commit = env.get("CODEBUILD_RESOLVED_SOURCE_VERSION") or ""
    if not commit and _SHA.match(env.get("CODEBUILD_SOURCE_VERSION", "")):
        commit = env["CODEBUILD_SOURCE_VERSION"]
    if commit:
        source["commit"] = commit
    if env.get("CODEBUILD_WEBHOOK_HEAD_REF"):
        source["branch"] = _strip_ref(env["CODEBUILD_WEBHOOK_HEAD_REF"])
    if env.get("CODEBUILD_WEBHOOK_BASE_REF"):
        source["base_ref"] = _strip_ref(env["CODEBUILD_WEBHOOK_BASE_REF"])
    trigger = env.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    if trigger.startswith("pr/"):
        source["pull_request"] = trigger[3:]
    for key, var in (("build_id", "CODEBUILD_BUILD_ID"), ("initiator", "CODEBUILD_INITIATOR")):
        if env.get(var):
            source[key] = env[var]
    return source


def git_source(directory: Path) -> dict[str, object]:
    source: dict[str, object] = {}
    top = _git(["rev-parse", "--show-toplevel"], directory)
    if top is None:
        return source
    remote = _git(["remote", "get-url", "origin"], directory)
    if remote:
        source["repository"] = scrub_url(remote)
    commit = _git(["rev-parse", "HEAD"], directory)
    if commit:
        source["commit"] = commit
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], directory)
    if branch and branch != "HEAD":
        source["branch"] = branch
    status = _git(["status", "--porcelain", "--", "."], directory)
    source["dirty"] = bool(status)
    return source


def detect_source(
    migrations_dir: Path, *, base_ref: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Repository, commit and branch of the migrations (CodeBuild variables first, then git)."""
    env = os.environ if env is None else env
    source: dict[str, object] = {}
    if migrations_dir.is_dir():
        source.update(git_source(migrations_dir))
    source.update(codebuild_source(env))
    if base_ref and "base_ref" not in source:
        source["base_ref"] = base_ref
    return source
