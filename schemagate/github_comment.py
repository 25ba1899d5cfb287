"""One pull-request comment holding report.md, created once and updated on every later run.

The comment is found by a hidden marker (``<!-- schemagate:report -->``, an HTML comment GitHub does
not show) among the pull request's comments (all pages), so a pull request carries one schemagate
comment however often it is validated.  The GitHub REST API is called with the standard library
(``urllib``): ``GET /repos/{owner}/{repo}/issues/{n}/comments``, then ``PATCH
/repos/{owner}/{repo}/issues/comments/{id}`` or ``POST .../issues/{n}/comments``.  ``GITHUB_API_URL``
(set by GitHub Actions, and by GitHub Enterprise) is the base.  The token goes in the
``Authorization`` header only; it is never printed, and an API error quotes GitHub's message, not
the request.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TypedDict, cast

from executor.errors import SchemagateError

MARKER = "<!-- schemagate:report -->"
DEFAULT_API_URL = "https://api.github.com"
TIMEOUT_S = 30
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class IssueComment(TypedDict, total=False):
    """What schemagate reads of a pull request's comment (the API's issue comment object)."""

    id: int
    body: str | None
    html_url: str


class GitHubApiError(SchemagateError):
    """The GitHub API refused a request (exit 1)."""


@dataclass(frozen=True)
class CommentResult:
    action: str  # "created" | "updated"
    comment_id: int
    url: str | None


class GitHubClient:
    def __init__(self, token: str, *, api_url: str = DEFAULT_API_URL) -> None:
        self._token = token
        self.api_url = api_url.rstrip("/")

    def __repr__(self) -> str:  # never the token
        return f"GitHubClient(api_url={self.api_url!r})"

    def request(
        self, method: str, url: str, body: dict[str, str] | None = None
    ) -> tuple[object, dict[str, str]]:
        """The JSON answer (None when empty; its shape is the endpoint's) and the headers."""
        full = url if url.startswith(("http://", "https://")) else f"{self.api_url}{url}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(full, data=data, method=method)  # noqa: S310 - http(s) only, above
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "schemagate")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:  # noqa: S310
                payload = response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = _message(exc.read())
            raise GitHubApiError(
                f"GitHub API {method} {_path(full)} answered {exc.code}: {detail}",
                remedy=_remedy(exc.code),
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubApiError(
                f"GitHub API {method} {_path(full)} could not be reached: {reason}",
                remedy="check GITHUB_API_URL and the network; the validation itself is not affected",
            ) from None
        return (json.loads(payload) if payload else None), headers

    def comments(self, repository: str, number: int) -> list[IssueComment]:
        """Every comment of the pull request (issue comments), all pages."""
        url: str | None = f"/repos/{repository}/issues/{number}/comments?per_page=100"
        out: list[IssueComment] = []
        while url:
            page, headers = self.request("GET", url)
            out += cast("list[IssueComment]", page or [])
            match = _NEXT.search(headers.get("link", ""))
            url = match.group(1) if match else None
        return out


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def _message(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", errors="replace") or "(no message)"
    return str(data.get("message") or data) if isinstance(data, dict) else str(data)


def _remedy(status: int) -> str:
    if status in (401, 403):
        return (
            "give the token permission to write pull-request comments (GitHub Actions: "
            "`permissions: pull-requests: write`; a fine-grained token: Pull requests read and write)"
        )
    if status == 404:
        return (
            "check the repository (owner/name) and the pull request number, and that the token can see them"
        )
    return "try again; if it persists, see GitHub's status page"


def comment_body(report_markdown: str) -> str:
    return f"{MARKER}\n{report_markdown.rstrip()}\n"


def upsert_comment(client: GitHubClient, repository: str, number: int, report_markdown: str) -> CommentResult:
    """Update the pull request's schemagate comment (the first one holding the marker), or create it."""
    body = comment_body(report_markdown)
    existing = next((c for c in client.comments(repository, number) if MARKER in (c.get("body") or "")), None)
    if existing is not None:
        answer, _ = client.request(
            "PATCH", f"/repos/{repository}/issues/comments/{existing['id']}", {"body": body}
        )
        updated = cast("IssueComment | None", answer)
        return CommentResult("updated", int(existing["id"]), (updated or {}).get("html_url"))
    answer, _ = client.request("POST", f"/repos/{repository}/issues/{number}/comments", {"body": body})
    created = cast(IssueComment, answer)
    return CommentResult("created", int(created["id"]), created.get("html_url"))
