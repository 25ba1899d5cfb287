"""Lambda (inlined by PullRequestValidation): comment a CodeCommit PR with its validation result.

CodeBuild reports build status back to GitHub/GitLab/Bitbucket itself; for CodeCommit this small
function does it, on the PR build's "CodeBuild Build State Change" event.  Standard library and
boto3 only (it is inlined, not bundled).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import boto3  # in the Lambda runtime

_VERDICT = {
    "SUCCEEDED": "passed: no blocking findings",
    "FAILED": "FAILED: see the findings in the report",
    "STOPPED": "was stopped before it finished",
}


def comment_request(event: dict[str, Any], repository_name: str) -> dict[str, str] | None:
    """The PostCommentForPullRequest arguments for one build event (None: not a PR build)."""
    detail = event["detail"]
    variables = {
        item["name"]: item["value"]
        for item in detail.get("additional-information", {})
        .get("environment", {})
        .get("environment-variables", [])
    }
    pull_request = variables.get("SCHEMAGATE_PULL_REQUEST_ID")
    before, after = variables.get("SCHEMAGATE_BASE_REF"), variables.get("SCHEMAGATE_SOURCE_COMMIT")
    if not (pull_request and before and after):
        return None
    build_id = detail["build-id"].rsplit("/", 1)[-1]  # <project>:<uuid>
    region, account, project = event["region"], event["account"], detail["project-name"]
    report = (
        f"https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/{project}"
        f"/build/{urllib.parse.quote(build_id, safe='')}/reports?region={region}"
    )
    status = detail["build-status"]
    return {
        "pullRequestId": pull_request,
        "repositoryName": repository_name,
        "beforeCommitId": before,
        "afterCommitId": after,
        "content": f"schemagate validation of {after[:12]} {_VERDICT.get(status, status)}.\n\n"
        f"Report: {report}",
        "clientRequestToken": f"{build_id}-{status}"[:64],
    }


def handle(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    request = comment_request(event, os.environ["REPOSITORY_NAME"])
    if request is None:
        return {"result": "skipped: not a pull-request build"}
    boto3.client("codecommit").post_comment_for_pull_request(**request)
    return {"result": "commented", "pullRequestId": request["pullRequestId"]}
