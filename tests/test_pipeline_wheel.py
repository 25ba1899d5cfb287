"""The schemagate the pipeline was deployed with: the wheel's asset hash, the buildspec's install
phase that installs it, and the CodeBuild executor's bundle check.

(test_pipeline_bundle.py builds the real wheel at synth and checks its content.)  The install phase
runs in bash with
stand-ins for ``aws`` and ``python`` that record what they were asked (installing the wheel's
dependencies would need the network); ``python -m executor.verify_bundle`` runs for real against
bundles signed with a moto KMS key.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from executor.bundle import write_bundle
from executor.signing import sign_manifest
from pipeline.schemagate_wheel import REPO_ROOT, sources_hash
from tests.test_handler import GOOD, make_test_bundle


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A wheel's bytes (test_pipeline_bundle.py builds and inspects the real one at synth)."""
    path = tmp_path / "built" / "schemagate-0.1.0-py3-none-any.whl"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schemagate/__init__.py", "")
    return path


def test_the_asset_hash_is_the_sources_not_the_build(tmp_path: Path) -> None:
    """An unchanged schemagate is not uploaded again (zip timestamps differ build to build)."""
    copy = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, copy / name)
    for package in ("executor", "validator", "schemagate", "pipeline"):
        shutil.copytree(REPO_ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    assert sources_hash(copy) == sources_hash(REPO_ROOT) == sources_hash(copy)
    (copy / "executor" / "apply.py").write_text((copy / "executor" / "apply.py").read_text() + "\n# edited\n")
    assert sources_hash(copy) != sources_hash(REPO_ROOT)


def _shim(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_install(tmp_path: Path, variables: dict[str, str]) -> list[str]:
    spec = yaml.safe_load((REPO_ROOT / "buildspec.yml").read_text())
    bindir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bindir.mkdir()
    _shim(bindir, "aws", f'echo "aws $*" >> {calls}; cp "{tmp_path}/bucket/${{4##*/}}" "$5"')
    _shim(bindir, "python", f'echo "python $*" >> {calls}')
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), **variables}
    for command in spec["phases"]["install"]["commands"]:
        subprocess.run(["bash", "-ec", command], cwd=tmp_path, env=env, check=True)
    return calls.read_text().splitlines()


def test_the_pipeline_build_installs_the_deployed_wheel(tmp_path: Path, wheel: Path) -> None:
    (tmp_path / "bucket").mkdir()
    shutil.copy2(wheel, tmp_path / "bucket" / "f13adcbe.whl")  # the asset's key is its hash
    name = f"schemagate-0.1.0-py3-none-any-{os.getpid()}.whl"
    calls = _run_install(
        tmp_path,
        {
            "SCHEMAGATE_WHEEL_URL": "s3://cdk-hnb659fds-assets-123456789012-eu-west-1/f13adcbe.whl",
            "SCHEMAGATE_WHEEL_NAME": name,
        },
    )
    assert (
        calls[-2]
        == f"aws s3 cp --quiet s3://cdk-hnb659fds-assets-123456789012-eu-west-1/f13adcbe.whl /tmp/{name}"
    )
    assert calls[-1] == f"python -m pip install --quiet /tmp/{name}[lint,local]"
    assert Path(f"/tmp/{name}").read_bytes() == wheel.read_bytes()
    Path(f"/tmp/{name}").unlink()
    # outside the pipeline (no wheel given) the checkout itself is installed: schemagate's own repository
    (tmp_path / "local").mkdir()
    assert _run_install(tmp_path / "local", {})[-1] == "python -m pip install --quiet .[lint,local]"


# --- the CodeBuild executor's bundle check --------------------------------------------------------


def test_verify_bundle_checks_files_and_signature_before_the_codebuild_executor_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from executor.verify_bundle import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
        other = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
        bundle = make_test_bundle(GOOD)
        sign_manifest(bundle.manifest, key, kms)
        write_bundle(bundle, tmp_path / "bundle")

        monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", key)
        assert main([str(tmp_path / "bundle")]) == 0
        assert f"bundle_sha256 {bundle.bundle_sha256}" in capsys.readouterr().out

        monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", other)  # signed, but not with this key
        assert main([str(tmp_path / "bundle")]) == 1
        assert "[SECURITY_VIOLATION]" in capsys.readouterr().err

        monkeypatch.delenv("SCHEMAGATE_SIGNING_KEY_ID")
        assert main([str(tmp_path / "bundle")]) == 1
        assert "SCHEMAGATE_SIGNING_KEY_ID is not set" in capsys.readouterr().err

        monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", key)
        tampered = tmp_path / "bundle" / "migrations" / "V2__create_invoices.sql"
        tampered.write_bytes(tampered.read_bytes() + b"DROP TABLE customers;\n")
        assert main([str(tmp_path / "bundle")]) == 1
        err = capsys.readouterr().err
        assert "[BUNDLE_INTEGRITY]" in err and "V2__create_invoices.sql" in err
    assert main([]) == 2
