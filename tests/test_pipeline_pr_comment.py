"""The CodeCommit pull-request comment: what it says for a finished PR build."""

from __future__ import annotations

import copy
from typing import Any

from pipeline.codecommit_pr_comment import comment_request

BUILD_ARN = "arn:aws:codebuild:eu-west-1:123456789012:build/PullRequestsProject-abc:1b2c3d4e-0000-1111-2222-333344445555"

# The shape of a "CodeBuild Build State Change" event (trimmed to what matters).
EVENT: dict[str, Any] = {
    "detail-type": "CodeBuild Build State Change",
    "source": "aws.codebuild",
    "account": "123456789012",
    "region": "eu-west-1",
    "resources": [BUILD_ARN],
    "detail": {
        "build-status": "FAILED",
        "project-name": "PullRequestsProject-abc",
        "build-id": BUILD_ARN,
        "current-phase": "COMPLETED",
        "additional-information": {
            "environment": {
                "image": "aws/codebuild/standard:8.0",
                "environment-variables": [
                    {"name": "SCHEMAGATE_BASE_REF", "value": "a" * 40, "type": "PLAINTEXT"},
                    {"name": "SCHEMAGATE_SOURCE_COMMIT", "value": "b" * 40, "type": "PLAINTEXT"},
                    {"name": "SCHEMAGATE_PULL_REQUEST_ID", "value": "42", "type": "PLAINTEXT"},
                ],
            },
        },
    },
}


def test_a_failed_pr_build_is_commented_on_its_pull_request_with_the_report_link() -> None:
    request = comment_request(EVENT, "app-migrations")
    assert request is not None
    assert request["pullRequestId"] == "42"
    assert request["repositoryName"] == "app-migrations"
    assert (request["beforeCommitId"], request["afterCommitId"]) == ("a" * 40, "b" * 40)
    assert request["content"].startswith("schemagate validation of bbbbbbbbbbbb FAILED")
    assert (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/"
        "PullRequestsProject-abc/build/PullRequestsProject-abc%3A1b2c3d4e-0000-1111-2222-333344445555"
        "/reports?region=eu-west-1" in request["content"]
    )
    assert len(request["clientRequestToken"]) <= 64  # a retried event posts once


def test_a_passing_build_says_so() -> None:
    event = copy.deepcopy(EVENT)
    event["detail"]["build-status"] = "SUCCEEDED"
    request = comment_request(event, "app-migrations")
    assert request is not None and "passed: no blocking findings" in request["content"]


def test_a_build_not_started_for_a_pull_request_is_left_alone() -> None:
    event = copy.deepcopy(EVENT)
    event["detail"]["additional-information"]["environment"]["environment-variables"] = []
    assert comment_request(event, "app-migrations") is None
