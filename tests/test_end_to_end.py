"""What was approved is what runs: the whole path with the real parts.

Given the project's example migrations, when `schemagate validate --bundle DIR --sign-with-kms KEY`
(the real CLI, as in buildspec.yml) writes a signed bundle, CodeBuild's artifact zip of that
directory lands in S3, and the executor Lambda handles the CodePipeline job with that key
configured, then every migration is applied once to a real PostgreSQL, recorded with the file's
checksum, the bundle hash and the pipeline execution id, and the pipeline is told of success.
A bundle an attacker with write access to the artifact bucket rewrote consistently (file, checksum
and bundle hash) is refused because the signature no longer verifies, and the database is left as
it was.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from executor.checksum import file_checksum
from executor.handler import handle
from schemagate.cli import main
from tests.conftest import REPO_ROOT
from tests.test_handler import EXECUTION_ID, JOB_EVENT, LambdaContext, World, aws_world, job_event


def _zip_directory(directory: Path) -> bytes:
    """The artifact CodeBuild uploads for `artifacts: base-directory: bundle, files: '**/*'`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


@pytest.fixture
def world(fresh_db: str, monkeypatch: pytest.MonkeyPatch):
    with aws_world(fresh_db, monkeypatch) as w:
        yield w


def test_the_validated_signed_bundle_is_exactly_what_the_executor_applies(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = world.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "migrations", project / "migrations")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.schemagate]\nmigrations = "migrations"\n'
    )
    monkeypatch.chdir(project)

    # build: the validation step writes and signs the bundle
    code = main(
        ["validate", "--no-lint", "--bundle", "bundle", "--reports", "reports", "--sign-with-kms", key]
    )
    assert code == 0
    manifest = json.loads((project / "bundle" / "manifest.json").read_text())
    assert manifest["signature"]["key_id"] and manifest["bundle_sha256"]
    files = sorted(p.name for p in (project / "migrations").glob("*.sql"))
    assert sorted(m["file"] for m in manifest["migrations"]) == files

    # execute: CodePipeline hands the artifact zip to the executor, which verifies with the key
    monkeypatch.setenv("SCHEMAGATE_SIGNING_KEY_ID", key)
    world.upload(_zip_directory(project / "bundle"))
    handle(job_event(), LambdaContext())

    result = world.stub.only(JOB_EVENT["CodePipeline.job"]["id"])
    assert result.operation == "PutJobSuccessResult", result.params
    rows = world.query(
        "SELECT script, checksum, bundle_sha256, run_id, success FROM public.schemagate_history ORDER BY installed_rank"
    )
    expected_order = [m["file"] for m in manifest["migrations"]]
    assert [r[0] for r in rows] == expected_order
    for script, checksum, bundle_sha256, run_id, success in rows:
        assert checksum == file_checksum((project / "migrations" / script).read_bytes())
        assert (bundle_sha256, run_id, success) == (manifest["bundle_sha256"], EXECUTION_ID, True)
    assert {"customers", "invoices", "invoice_lines", "payments"} <= world.tables()

    # an attacker rewrites the approved bundle consistently: new file bytes, checksum and hash
    tampered = project / "tampered"
    shutil.copytree(project / "bundle", tampered)
    extra = b"DROP TABLE payments CASCADE;\n"
    (tampered / "migrations" / "V010__cleanup.sql").write_bytes(extra)
    manifest["migrations"].insert(
        len([m for m in manifest["migrations"] if m["kind"] == "versioned"]),
        {
            "file": "V010__cleanup.sql",
            "kind": "versioned",
            "version": "010",
            "description": "cleanup",
            "sha256": file_checksum(extra),
            "transactional": True,
            "settings": {},
        },
    )
    from executor.bundle import raw_manifest_sha256

    manifest["bundle_sha256"] = raw_manifest_sha256(manifest)
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    world.upload(_zip_directory(tampered))
    handle(job_event(job_id="job-tampered"), LambdaContext())

    refused = world.stub.only("job-tampered")
    assert refused.operation == "PutJobFailureResult"
    assert refused.params["failureDetails"]["message"].startswith("[SECURITY_VIOLATION]")
    assert "payments" in world.tables()
    assert len(world.query("SELECT 1 FROM public.schemagate_history")) == len(rows)
