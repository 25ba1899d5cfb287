"""Bundles the executor must refuse before touching the database: unsigned ones when no signing key
is configured, and manifests nested deeply enough to exhaust a recursive JSON decoder."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from executor.artifact import bundle_from_zip, zip_bundle
from executor.bundle import MAX_MANIFEST_DEPTH, load_bundle, write_bundle
from executor.errors import BundleIntegrityError
from executor.handler import handle
from schemagate.cli import main
from tests.test_handler import (
    ARTIFACT,
    GOOD,
    JOB_EVENT,
    LambdaContext,
    World,
    aws_world,
    job_event,
    json_lines,
    make_test_bundle,
)

JOB_ID = JOB_EVENT["CodePipeline.job"]["id"]


def deep_manifest(depth: int) -> bytes:
    """A manifest whose ``source`` carries a list nested ``depth`` levels deep."""
    return (
        b'{"format": 1, "created_at": "2025-01-01T00:00:00Z", "source": {"note": '
        + b"[" * depth
        + b"]" * depth
        + b'}, "migrations": [], "findings": {}, "bundle_sha256": "00"}'
    )


def zipped(manifest: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", manifest)
    return buffer.getvalue()


@pytest.mark.parametrize("depth", [MAX_MANIFEST_DEPTH + 8, 200_000])
def test_a_deeply_nested_manifest_is_a_bundle_integrity_refusal(tmp_path: Path, depth: int) -> None:
    (tmp_path / "manifest.json").write_bytes(deep_manifest(depth))
    with pytest.raises(BundleIntegrityError) as from_directory:
        load_bundle(tmp_path)
    with pytest.raises(BundleIntegrityError) as from_zip:
        bundle_from_zip(zipped(deep_manifest(depth)), origin="s3://artifacts/bundle.zip")
    for caught in (from_directory, from_zip):
        assert caught.value.category.value == "BUNDLE_INTEGRITY"
        assert "nests deeper than" in caught.value.message and caught.value.file == "manifest.json"


def test_the_cli_refuses_a_deeply_nested_manifest_with_exit_1(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_bytes(deep_manifest(200_000))
    assert main(["plan", "--bundle", "bundle", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]) == 1
    assert "nests deeper than" in capsys.readouterr().err


@pytest.fixture
def world(fresh_db: str, monkeypatch: pytest.MonkeyPatch):
    with aws_world(fresh_db, monkeypatch) as w:
        yield w


def test_the_lambda_refuses_a_deeply_nested_manifest_as_bundle_integrity(world: World) -> None:
    world.upload(zipped(deep_manifest(200_000)))
    handle(job_event(), LambdaContext())
    message = world.stub.only(JOB_ID).params["failureDetails"]["message"]
    assert message.startswith("[BUNDLE_INTEGRITY]") and "nests deeper than" in message
    assert world.tables() == set()


def test_without_a_signing_key_the_lambda_refuses_every_bundle(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES")
    world.upload(make_test_bundle(GOOD))
    handle(job_event(), LambdaContext())
    result = world.stub.only(JOB_ID)
    assert result.operation == "PutJobFailureResult"
    message = result.params["failureDetails"]["message"]
    assert message.startswith("[SECURITY_VIOLATION]")
    assert "no signing key" in message and "SCHEMAGATE_SIGNING_KEY_ID" in message
    direct = handle({"action": "plan", "bundle": f"s3://{ARTIFACT['bucketName']}/{ARTIFACT['objectKey']}"})
    assert direct["ok"] is False and direct["category"] == "SECURITY_VIOLATION"
    assert world.tables() == set()  # nothing touched the database
    failures = [line for line in json_lines(capsys.readouterr().out) if line.get("level") == "ERROR"]
    assert failures and all(line["category"] == "SECURITY_VIOLATION" for line in failures)


def test_unsigned_bundles_explicitly_allowed_are_applied_with_a_warning_each_time(
    world: World, capsys
) -> None:
    world.upload(make_test_bundle(GOOD))
    handle(job_event(job_id="first"), LambdaContext())
    handle(job_event(job_id="second"), LambdaContext())
    assert [world.stub.only(j).operation for j in ("first", "second")] == ["PutJobSuccessResult"] * 2
    assert [row[:2] for row in world.history()] == [(name, True) for name in GOOD]
    warnings = [
        line
        for line in json_lines(capsys.readouterr().out)
        if line.get("level") == "WARNING" and line.get("allow_unsigned_bundles")
    ]
    assert len(warnings) == 2 and "WITHOUT verifying its signature" in warnings[0]["message"]


def test_a_misspelt_allow_unsigned_flag_is_a_configuration_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES", "ture")
    world.upload(make_test_bundle(GOOD))
    handle(job_event(), LambdaContext())
    message = world.stub.only(JOB_ID).params["failureDetails"]["message"]
    assert message.startswith("[CONFIGURATION_ERROR]") and "SCHEMAGATE_ALLOW_UNSIGNED_BUNDLES" in message
    assert world.tables() == set()


def test_a_bundle_written_and_read_back_is_not_refused(tmp_path: Path) -> None:
    """The depth limit leaves real manifests alone (settings, source, signature nest four deep)."""
    bundle = make_test_bundle(GOOD)
    write_bundle(bundle, tmp_path / "bundle")
    assert load_bundle(tmp_path / "bundle").bundle_sha256 == bundle.bundle_sha256
    assert bundle_from_zip(zip_bundle(bundle), origin="memory").bundle_sha256 == bundle.bundle_sha256
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text())["format"] == 1
