"""The CodeBuild pull-request build posts the same one comment on GitHub when the project gives it a
token: buildspec.yml's post_build command run with a webhook build's environment against the local
GitHub API of test_github_action.py, and the CDK app handing the build the token secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from aws_cdk.assertions import Match

from pipeline.config import PipelineConfig, PipelineConfigError
from tests.pipeline_synth import (
    COMMENT_TOKEN_SECRET_ARN,
    CONNECTION_ARN,
    Synthesized,
    github_comments,
    synth_dir,
)
from tests.test_github_action import TOKEN, FakeGitHub

REPO = Path(__file__).resolve().parent.parent
TOKEN_SECRET = COMMENT_TOKEN_SECRET_ARN
__all__ = ["github_comments", "synth_dir"]

REPORT = """## schemagate validate: ❌ failed

**23** migration files checked: **1** errors, **0** warnings.
"""


def post_build_script() -> str:
    spec = yaml.safe_load((REPO / "buildspec.yml").read_text(encoding="utf-8"))
    return "\n".join(spec["phases"]["post_build"]["commands"])


def run_post_build(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(workdir)}
    return subprocess.run(
        ["bash", "-c", post_build_script()],
        cwd=workdir,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.md").write_text(REPORT, encoding="utf-8")
    return tmp_path


def test_a_github_webhook_build_with_the_token_posts_then_updates_one_comment(build_dir):
    with FakeGitHub() as api:
        env = {
            "CODEBUILD_WEBHOOK_TRIGGER": "pr/7",
            "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/billing-service.git",
            "SCHEMAGATE_GITHUB_TOKEN": TOKEN,
            "GITHUB_API_URL": api.url,
        }
        first = run_post_build(build_dir, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "created the schemagate comment on acme/billing-service#7" in first.stdout
        second = run_post_build(build_dir, env)
        assert "updated the schemagate comment on acme/billing-service#7" in second.stdout
        [comment] = api.ours()
        assert comment["body"] == "<!-- schemagate:report -->\n" + REPORT
        assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_without_a_token_or_outside_a_pull_request_nothing_is_posted(build_dir):
    with FakeGitHub() as api:
        common = {
            "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/billing-service.git",
            "GITHUB_API_URL": api.url,
        }
        no_token = run_post_build(build_dir, common | {"CODEBUILD_WEBHOOK_TRIGGER": "pr/7"})
        main_branch = run_post_build(
            build_dir, common | {"CODEBUILD_WEBHOOK_TRIGGER": "branch/main", "SCHEMAGATE_GITHUB_TOKEN": TOKEN}
        )
        assert no_token.returncode == 0 and main_branch.returncode == 0
        assert api.requests == []


def test_a_refused_comment_does_not_fail_the_build(build_dir):
    with FakeGitHub() as api:
        env = {
            "CODEBUILD_WEBHOOK_TRIGGER": "pr/7",
            "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/billing-service.git",
            "SCHEMAGATE_GITHUB_TOKEN": "ghp_expired",
            "GITHUB_API_URL": api.url,
        }
        done = run_post_build(build_dir, env)
        assert done.returncode == 0
        assert "answered 401: Bad credentials" in done.stderr and "pull-requests: write" in done.stderr
        assert "the pull-request comment was not posted" in done.stdout
        assert "ghp_expired" not in done.stdout + done.stderr
        assert api.ours() == []


@pytest.mark.slow
def test_the_pr_build_gets_the_token_secret_and_may_read_only_that(github_comments: Synthesized) -> None:
    # synthesized once per run, or taken from the cache of earlier runs (tests/pipeline_synth.py)
    template = github_comments.template("SchemagatePipeline")
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Triggers": Match.object_like({"Webhook": True}),
            "Environment": Match.object_like(
                {
                    "EnvironmentVariables": Match.array_with(
                        [
                            {
                                "Name": "SCHEMAGATE_GITHUB_TOKEN",
                                "Type": "SECRETS_MANAGER",
                                "Value": TOKEN_SECRET,
                            }
                        ]
                    )
                }
            ),
        },
    )
    policies = template.find_resources("AWS::IAM::Policy")
    readers = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in json.dumps(statement["Action"])
        and "github-comments" in json.dumps(statement)
    ]
    assert readers, "the PR build's role must be able to read the token secret"
    # the pipeline's own validation build never gets the token
    projects = template.find_resources("AWS::CodeBuild::Project")
    with_token = [
        p
        for p in projects.values()
        if "SCHEMAGATE_GITHUB_TOKEN"
        in json.dumps(p["Properties"]["Environment"].get("EnvironmentVariables", []))
    ]
    assert len(with_token) == 1 and with_token[0]["Properties"].get("Triggers", {}).get("Webhook") is True


def test_the_token_key_is_for_github_sources_only():
    with pytest.raises(PipelineConfigError, match="githubCommentTokenSecretArn: is for GitHub"):
        PipelineConfig.from_mapping(
            {
                "sourceProvider": "gitlab",
                "connectionArn": CONNECTION_ARN,
                "repositoryOwner": "acme",
                "repositoryName": "billing-service",
                "demoDatabase": True,
                "githubCommentTokenSecretArn": TOKEN_SECRET,
            }
        )
