"""The CDK app synthesized with representative configurations, once per test run, for the
tests/test_pipeline_*.py modules (jsii synth is slow: each configuration is synthesized once).

The first worker (pytest-xdist) to need a configuration synthesizes it, the others wait for it and
read the templates.  The output is kept between runs under ``.schemagate/test-cache/cdk/``
(git-ignored), one directory per configuration named by a hash of everything the synthesis reads:
the sources of ``pipeline/`` and ``executor/`` (the Lambda asset is a copy of it), ``cdk.json``,
this module (the configurations, the buildspec), the versions of aws-cdk-lib, constructs, cdk-nag
and jsii, and Node's.  A change to any of them synthesizes again; ``SCHEMAGATE_TEST_CDK_CACHE=0``
synthesizes into the run's temporary directory instead, as a clean clone does.  The Lambda asset
points at a stub package (``executorAssetDir``) and the schemagate wheel at a stub file
(``schemagateWheel``) so synth runs no pip; test_pipeline_bundle.py runs the real builds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # this machine's Node

from aws_cdk import App
from aws_cdk.assertions import Template

from pipeline.app import build_app

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = REPO_ROOT / ".schemagate" / "test-cache" / "cdk"
WHEEL_NAME = "schemagate-0.1.0-py3-none-any.whl"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-db-AbCdEf"
CONNECTION_ARN = (
    "arn:aws:codeconnections:eu-west-1:123456789012:connection/12345678-1234-1234-1234-123456789012"
)
SECRET_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0b5a1f7e-1234-4321-abcd-0123456789ab"
SUBNETS = ["subnet-0aaa1111", "subnet-0bbb2222"]
DB_SG = "sg-0ccc3333"
STAGING_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:staging/billing-Xy12Zw"
TARGETS_PARAMETER = "/schemagate/production/targets"
PRODUCTION_SUBNETS = ["subnet-0ddd4444", "subnet-0eee5555", "subnet-0fff6666"]
PRODUCTION_DB_SG = "sg-0aaa7777"
COMMENT_TOKEN_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/github-comments-AbCdEf"

# A minimal buildspec of the shape the repository's has (H2 owns the real one).
BUILDSPEC = """\
version: 0.2
env:
  exported-variables: [SCHEMAGATE_BUNDLE_SHA256]
phases:
  build:
    commands:
      - schemagate validate --reports reports --bundle bundle --sign-with-kms "$SCHEMAGATE_SIGNING_KEY_ID"
reports:
  schemagate-validation:
    file-format: JUNITXML
    base-directory: reports
    files: [junit.xml]
artifacts:
  base-directory: bundle
  files: ['**/*']
"""

CONFIGS: dict[str, dict[str, Any]] = {
    "codecommit": {
        "sourceProvider": "codecommit",
        "repositoryName": "app-migrations",
        "databaseSecretArn": SECRET_ARN,
        "databaseSecretKmsKeyArn": SECRET_KEY_ARN,
        "vpcId": "vpc-0abc1234",
        "privateSubnetIds": SUBNETS,
        "databaseSecurityGroupId": DB_SG,
        "approvalEmails": ["dba@example.com", "lead@example.com"],
        "approvalTimeoutMinutes": 720,
        "schema": "app",
    },
    "github-demo": {
        "sourceProvider": "github",
        "connectionArn": CONNECTION_ARN,
        "repositoryOwner": "acme",
        "repositoryName": "app",
        "branch": "trunk",
        "demoDatabase": True,
    },
    # staging + production: one database (long migrations: the CodeBuild executor, a snapshot
    # first), then a fleet of tenant databases (targets from SSM, a snapshot of each instance)
    "environments": {
        "sourceProvider": "gitlab",
        "connectionArn": CONNECTION_ARN,
        "repositoryOwner": "acme/platform",
        "repositoryName": "billing",
        "migrationsDirectory": "services/billing/db/migrations",
        "approvalEmails": ["oncall@example.com"],
        "environments": [
            {
                "name": "staging",
                "databaseSecretArn": STAGING_SECRET_ARN,
                "vpcId": "vpc-0abc1234",
                "privateSubnetIds": SUBNETS,
                "databaseSecurityGroupId": DB_SG,
                "databaseInstanceIdentifier": "billing-staging",
                "snapshotBeforeApply": True,
                "executor": "codebuild",
                "approvalEmails": ["staging-owner@example.com"],
            },
            {
                "name": "production",
                "fleet": {
                    "targetsParameter": TARGETS_PARAMETER,
                    "maxConcurrency": 25,
                    "toleratedFailurePercentage": 5,
                },
                "snapshotBeforeApply": True,
                "databaseSecretKmsKeyArn": SECRET_KEY_ARN,
                "vpcId": "vpc-0def5678",
                "privateSubnetIds": PRODUCTION_SUBNETS,
                "databaseSecurityGroupId": PRODUCTION_DB_SG,
                "approvalEmails": ["dba@example.com"],
            },
        ],
    },
    # the pull-request build posting its comment with a token (tests/test_codebuild_pr_comment.py)
    "github-comments": {
        "sourceProvider": "github",
        "connectionArn": CONNECTION_ARN,
        "repositoryOwner": "acme",
        "repositoryName": "billing-service",
        "demoDatabase": True,
        "githubCommentTokenSecretArn": COMMENT_TOKEN_SECRET_ARN,
    },
}


# github-demo and github-comments are synthesized for a concrete account and region, the others
# environment-agnostic.
ENVIRONMENTS: dict[str, dict[str, str]] = {
    "codecommit": {},
    "github-demo": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    "environments": {},
    "github-comments": {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
}


@dataclass
class Synthesized:
    outdir: Path
    stacks: list[str]

    def template(self, stack: str) -> Template:
        return Template.from_json(self.raw(stack))

    def raw(self, stack: str) -> dict[str, Any]:
        return json.loads((self.outdir / f"{stack}.template.json").read_text())


def synthesis_inputs_hash(name: str) -> str:
    """A hash of everything the synthesis of configuration ``name`` reads (see the module doc)."""
    digest = hashlib.sha256()
    for tree in ("pipeline", "executor"):
        for path in sorted((REPO_ROOT / tree).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    for path in (REPO_ROOT / "cdk.json", Path(__file__)):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps([name, CONFIGS[name], ENVIRONMENTS[name]], sort_keys=True).encode())
    for package in ("aws-cdk-lib", "constructs", "cdk-nag", "jsii"):
        digest.update(f"{package}=={version(package)}\0".encode())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    digest.update(f"node {node.stdout.strip()}".encode())
    return digest.hexdigest()


def _synthesize(name: str, workdir: Path, *, keyed: bool) -> Synthesized:
    """Configuration ``name`` synthesized under ``workdir``: in a directory named by the hash of its
    inputs when ``keyed`` (the cache kept between runs), else in ``cdk.out-NAME``."""
    inputs = synthesis_inputs_hash(name) if keyed else ""
    entry = workdir / (f"{name}-{inputs[:24]}" if keyed else name)
    outdir = entry / "cdk.out"
    done = entry / "synthesized"  # written last: a synthesis cut short is done again
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if keyed:  # entries of this configuration for other inputs are stale
                for stale in workdir.glob(f"{name}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
            shutil.rmtree(entry, ignore_errors=True)
            stub = entry / "executor-stub"
            shutil.copytree(
                REPO_ROOT / "executor", stub / "executor", ignore=shutil.ignore_patterns("__pycache__")
            )
            buildspec = entry / "buildspec.yml"
            buildspec.write_text(BUILDSPEC)
            wheel = entry / WHEEL_NAME
            wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: the asset is never installed
            context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
            context["schemagate"] = {
                **CONFIGS[name],
                "buildspecPath": str(buildspec),
                "executorAssetDir": str(stub),
                "schemagateWheel": str(wheel),
            }
            app = App(context=context, outdir=str(outdir))
            saved = {key: os.environ.get(key) for key in ENVIRONMENTS[name]}
            os.environ.update(ENVIRONMENTS[name])  # what the CDK CLI sets from the AWS profile
            try:
                build_app(app)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            app.synth()  # cdk-nag runs here: an unacknowledged finding raises ValidationFailed
            done.write_text(inputs)
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [
        key for key, value in manifest["artifacts"].items() if value["type"] == "aws:cloudformation:stack"
    ]
    return Synthesized(outdir=outdir, stacks=stacks)


def _cache_enabled() -> bool:
    return os.environ.get("SCHEMAGATE_TEST_CDK_CACHE", "1") != "0"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    if _cache_enabled():
        return CACHE_ROOT
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    if worker is None:
        return tmp_path_factory.mktemp("cdk")
    # shared by the xdist workers of this run
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    return tmp_path_factory.getbasetemp().parent / f"cdk-{run}"


@pytest.fixture(scope="session")
def codecommit(synth_dir: Path) -> Synthesized:
    return _synthesize("codecommit", synth_dir, keyed=_cache_enabled())


@pytest.fixture(scope="session")
def github_demo(synth_dir: Path) -> Synthesized:
    return _synthesize("github-demo", synth_dir, keyed=_cache_enabled())


@pytest.fixture(scope="session")
def environments(synth_dir: Path) -> Synthesized:
    return _synthesize("environments", synth_dir, keyed=_cache_enabled())


@pytest.fixture(scope="session")
def github_comments(synth_dir: Path) -> Synthesized:
    return _synthesize("github-comments", synth_dir, keyed=_cache_enabled())


@pytest.fixture(scope="session")
def promotion(environments: Synthesized) -> Template:
    """staging + production (fleet): the pipeline stack's template."""
    return environments.template("SchemagatePipeline")


@pytest.fixture(scope="session")
def pipeline(codecommit: Synthesized) -> Template:
    return codecommit.template("SchemagatePipeline")


@pytest.fixture(scope="session")
def demo_pipeline(github_demo: Synthesized) -> Template:
    return github_demo.template("SchemagatePipeline")


@pytest.fixture(scope="session")
def demo_database(github_demo: Synthesized) -> Template:
    return github_demo.template("SchemagateDemoDatabase")


def _logical_id(template: Template, resource_type: str, props: dict[str, Any] | None = None) -> str:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type} matching {props}, found {list(found)}"
    return next(iter(found))


def _statements_of_role(raw: Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements = []
    for resource in raw["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


# --- helpers ---------------------------------------------------------------------------------------


def _resolve_join(value: Any) -> str:
    """Flatten an Fn::Join with Ref/GetAtt parts into readable text (``<arn of X>``, ``<X>``)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve_join(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return f"<arn of {name}>" if attribute == "Arn" else f"<{attribute} of {name}>"
    return json.dumps(value)
