"""The real thing, once: the app as ``python -m pipeline.app`` runs it, local bundling and all.

No stub here: the executor asset is bundled by ``pip install --platform manylinux2014_x86_64`` and
the schemagate wheel the builds install is built by ``pip wheel`` (the only network this needs is
the package index), with Docker made unreachable, from the repository's own cdk.json (plus the
connection ARN it asks for) and buildspec.yml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONNECTION_ARN = (
    "arn:aws:codeconnections:eu-west-1:123456789012:connection/12345678-1234-1234-1234-123456789012"
)


@pytest.mark.slow
def test_the_app_synthesizes_from_cdk_json_with_local_bundling_and_no_docker(tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CDK_") and key not in ("PATH", "DOCKER_HOST")
    }
    env.update(
        PATH="/usr/bin:/bin",  # node, but not /usr/local/bin/docker
        CDK_DOCKER=str(tmp_path / "no-docker-here"),  # what CDK would run if it fell back to Docker
        CDK_OUTDIR=str(outdir),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        # what `cdk synth -c schemagate:connectionArn=...` hands the app: cdk.json's context + the override
        CDK_CONTEXT_JSON=json.dumps(
            {
                **json.loads((REPO_ROOT / "cdk.json").read_text())["context"],
                "schemagate:connectionArn": CONNECTION_ARN,
            }
        ),
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.app"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        name
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"SchemagatePipeline", "SchemagateDemoDatabase-staging"}  # cdk.json's first deploy

    template = json.loads((outdir / "SchemagatePipeline.template.json").read_text())
    (function,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == HANDLER
    ]
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    package = outdir / f"asset.{asset_hash}"
    # Linux wheels for the Lambda's runtime, whatever machine ran synth
    assert list(package.glob("psycopg2/_psycopg.cpython-312-x86_64-linux-gnu.so"))
    assert (package / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (package / "executor" / "handler.py").is_file()
    assert not (package / "boto3").exists()  # the runtime provides it
    assert not list(package.rglob("__pycache__"))

    # the repository's buildspec is what the validation build runs
    projects = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"
    ]
    inlined = [p["Source"]["BuildSpec"] for p in projects if p["Source"]["Type"] == "CODEPIPELINE"]
    assert len(inlined) == 1
    assert "schemagate validate" in json.dumps(inlined[0])

    # the schemagate the builds install: the wheel asset, with every package and its data
    (wheel,) = outdir.glob("asset.*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "executor/handler.py",
        "executor/fleet_pipeline.py",
        "executor/verify_bundle.py",
        "validator/sqlfluff_defaults.cfg",  # package data the validator reads at run time
        "schemagate/cli.py",
        "schemagate-0.1.0.dist-info/entry_points.txt",
    ):
        assert expected in names, expected
    assert not any(name.startswith(("tests/", "build/")) or "__pycache__" in name for name in names)
    entry_points = zipfile.ZipFile(wheel).read("schemagate-0.1.0.dist-info/entry_points.txt").decode()
    assert "schemagate = schemagate.cli:entry" in entry_points


HANDLER = "executor.handler.handle"
