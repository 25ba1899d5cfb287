"""``schemagate pr-comment``: post report.md on the pull request, as one comment updated in place.

Run after ``schemagate validate --reports DIR``, by the GitHub Action (action.yml) and by the
CodeBuild pull-request build (buildspec.yml, when the project gives it a token).  What it needs is
read from the environment those set, or from the options:

- the repository: ``--repository OWNER/REPO``, else ``$GITHUB_REPOSITORY`` (GitHub Actions), else
  the GitHub URL in ``$CODEBUILD_SOURCE_REPO_URL`` (CodeBuild);
- the pull request: ``--pull-request N``, else the ``pull_request.number`` of the event in
  ``$GITHUB_EVENT_PATH``, else ``$CODEBUILD_WEBHOOK_TRIGGER`` (``pr/42``);
- the token: ``$GITHUB_TOKEN``, else ``$SCHEMAGATE_GITHUB_TOKEN`` (never an option, so it stays out
  of process listings and logs); the API: ``$GITHUB_API_URL`` (default https://api.github.com).

Exit 0 when posted; 2 when something above is missing; 1 when GitHub refuses.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from executor.errors import ConfigurationError

_GITHUB_URL = re.compile(r"^(?:https://|git@)github\.com[/:](?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/?$")
_REPOSITORY = re.compile(r"^[\w.-]+/[\w.-]+$")


def _repository(given: str | None) -> str:
    repository = given or os.environ.get("GITHUB_REPOSITORY")
    if not repository:
        match = _GITHUB_URL.match(os.environ.get("CODEBUILD_SOURCE_REPO_URL", ""))
        repository = match.group("repo") if match else None
    if not repository or not _REPOSITORY.match(repository):
        raise ConfigurationError(
            f"no GitHub repository to comment on ({repository!r})"
            if repository
            else "no GitHub repository to comment on",
            remedy="pass --repository OWNER/REPO (GitHub Actions sets $GITHUB_REPOSITORY)",
        )
    return repository


def _pull_request(given: int | None) -> int:
    if given is not None:
        return given
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if event_path and Path(event_path).is_file():
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        number = (event.get("pull_request") or {}).get("number") or event.get("number")
        if isinstance(number, int):
            return number
    trigger = os.environ.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    if trigger.startswith("pr/") and trigger[3:].isdigit():
        return int(trigger[3:])
    raise ConfigurationError(
        "no pull request to comment on: this run is not for a pull request",
        remedy="pass --pull-request N, or run it only on pull_request events",
    )


@click.command("pr-comment", short_help="Post report.md on the GitHub pull request (one comment).")
@click.option(
    "--report",
    "report",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("reports/report.md"),
    show_default=True,
    help="the report.md written by `schemagate validate --reports DIR`",
)
@click.option("--repository", metavar="OWNER/REPO", help="default: $GITHUB_REPOSITORY")
@click.option("--pull-request", "pull_request", type=int, metavar="N", help="default: from the event")
def pr_comment_command(report: Path, repository: str | None, pull_request: int | None) -> None:
    """Post REPORT on the pull request, updating the comment an earlier run posted (found by a
    hidden marker) instead of adding another.  The token is read from $GITHUB_TOKEN."""
    from schemagate.github_comment import DEFAULT_API_URL, GitHubClient, upsert_comment

    if not report.is_file():
        raise ConfigurationError(
            f"{report} does not exist",
            remedy="run `schemagate validate --reports DIR` first, then pass --report",
        )
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("SCHEMAGATE_GITHUB_TOKEN")
    if not token:
        raise ConfigurationError(
            "no token to post the comment with",
            remedy="set GITHUB_TOKEN (GitHub Actions: `env: GITHUB_TOKEN: ${{ github.token }}` with "
            "`permissions: pull-requests: write`)",
        )
    repo = _repository(repository)
    number = _pull_request(pull_request)
    client = GitHubClient(token, api_url=os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL)
    result = upsert_comment(client, repo, number, report.read_text(encoding="utf-8"))
    where = f" ({result.url})" if result.url else ""
    click.echo(f"{result.action} the schemagate comment on {repo}#{number}{where}")


def register(group: click.Group) -> None:
    """Add `schemagate pr-comment` to the group."""
    group.add_command(pr_comment_command)
