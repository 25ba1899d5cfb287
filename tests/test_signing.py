"""Bundle signatures with KMS (moto): sign bundle_sha256, verify with the configured key only.

moto signs and verifies consistently but ignores ``MessageType=DIGEST`` (it hashes the 32 bytes
again), so these tests prove the protocol between signer and verifier, not byte compatibility of
the signature with real KMS; ``test_requests_use_digest_message_type`` pins what is sent.
"""

from __future__ import annotations

import base64
import copy

import boto3
import pytest
from moto import mock_aws

from executor import aws_clients
from executor.bundle import make_bundle
from executor.checksum import file_checksum
from executor.errors import ConfigurationError, SecurityViolation
from executor.manifest import Manifest, ManifestEntry
from executor.signing import KmsSignatureVerifier, sign_manifest

SQL = b"CREATE TABLE t (id bigint PRIMARY KEY);\n"


def _manifest() -> Manifest:
    entry = ManifestEntry(
        file="V1__t.sql", kind="versioned", version="1", description="t", sha256=file_checksum(SQL)
    )
    return make_bundle([(entry, SQL)], source={"commit": "abc"}).manifest


@pytest.fixture
def kms():
    aws_clients.reset()  # executor.aws_clients: no client made outside the mock serves code inside it
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")
        aws_clients.reset()


def _key(kms, spec: str = "ECC_NIST_P256") -> str:
    return kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]


@pytest.mark.parametrize(
    ("spec", "algorithm"), [("ECC_NIST_P256", "ECDSA_SHA_256"), ("RSA_2048", "RSASSA_PSS_SHA_256")]
)
def test_signature_round_trip(kms, spec: str, algorithm: str) -> None:
    key = _key(kms, spec)
    manifest = _manifest()
    signature = sign_manifest(manifest, key, kms)
    assert signature["algorithm"] == algorithm
    assert key in signature["key_id"]  # KMS answers with the key ARN
    assert base64.b64decode(signature["value"])
    # the signature is stored in the manifest, outside the hash
    assert manifest.signature == signature
    assert manifest.compute_sha256() == manifest.bundle_sha256
    assert manifest.to_dict()["signature"] == signature
    KmsSignatureVerifier(key, kms)(Manifest.from_dict(manifest.to_dict()))


def test_unsigned_bundle_is_refused(kms) -> None:
    with pytest.raises(SecurityViolation, match="not signed") as exc:
        KmsSignatureVerifier(_key(kms), kms)(_manifest())
    assert exc.value.remedy and "--sign-with-kms" in exc.value.remedy


def test_signature_of_another_key_is_refused(kms) -> None:
    manifest = _manifest()
    sign_manifest(manifest, _key(kms), kms)
    required = _key(kms)
    with pytest.raises(SecurityViolation, match="does not verify") as exc:
        KmsSignatureVerifier(required, kms)(manifest)
    assert exc.value.category.value == "SECURITY_VIOLATION"
    assert exc.value.context["required_key"] == required


def test_signature_of_a_changed_manifest_is_refused(kms) -> None:
    key = _key(kms)
    manifest = _manifest()
    sign_manifest(manifest, key, kms)
    other = copy.deepcopy(manifest)
    other.source["commit"] = "evil"
    other.seal()  # an attacker can recompute the hash, not the signature
    with pytest.raises(SecurityViolation, match="does not verify"):
        KmsSignatureVerifier(key, kms)(other)


def test_garbage_signature_is_refused(kms) -> None:
    key = _key(kms)
    manifest = _manifest()
    manifest.signature = {"key_id": key, "algorithm": "ECDSA_SHA_256", "value": "not base64!"}
    with pytest.raises(SecurityViolation, match="not base64"):
        KmsSignatureVerifier(key, kms)(manifest)
    manifest.signature = {"key_id": key, "algorithm": "HMAC_SHA_256", "value": "AAAA"}
    with pytest.raises(SecurityViolation, match="HMAC_SHA_256"):
        KmsSignatureVerifier(key, kms)(manifest)


def test_signing_needs_a_sign_verify_key(kms) -> None:
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ConfigurationError, match="SIGN_VERIFY"):
        sign_manifest(_manifest(), symmetric, kms)
    p384 = _key(kms, "ECC_NIST_P384")  # signs SHA-384 digests only
    with pytest.raises(ConfigurationError, match="cannot sign a SHA-256 digest"):
        sign_manifest(_manifest(), p384, kms)


def test_unsealed_manifest_is_not_signed(kms) -> None:
    manifest = _manifest()
    manifest.source["commit"] = "changed after seal"
    with pytest.raises(SecurityViolation, match="changed after it was sealed"):
        sign_manifest(manifest, _key(kms), kms)


def test_requests_use_digest_message_type(kms) -> None:
    key = _key(kms)
    manifest = _manifest()
    sent: list[dict] = []
    kms.meta.events.register("provide-client-params.kms.*", lambda params, **_: sent.append(dict(params)))
    sign_manifest(manifest, key, kms)
    KmsSignatureVerifier(key, kms)(manifest)
    signing = [p for p in sent if "SigningAlgorithm" in p]
    assert [p["MessageType"] for p in signing] == ["DIGEST", "DIGEST"]
    assert manifest.bundle_sha256 is not None
    assert all(p["Message"] == bytes.fromhex(manifest.bundle_sha256) for p in signing)
    assert signing[1]["KeyId"] == key  # verified with the configured key, not the manifest's


def test_pinned_algorithm_needs_no_describe_key(kms, monkeypatch: pytest.MonkeyPatch) -> None:
    # the pipeline's CodeBuild role may only kms:Sign; SCHEMAGATE_SIGNING_ALGORITHM spares DescribeKey
    key = _key(kms, "RSA_2048")
    monkeypatch.setenv("SCHEMAGATE_SIGNING_ALGORITHM", "RSASSA_PKCS1_V1_5_SHA_256")
    called: list[str] = []
    kms.meta.events.register("before-call.kms.DescribeKey", lambda **_: called.append("DescribeKey"))
    manifest = _manifest()
    assert sign_manifest(manifest, key, kms)["algorithm"] == "RSASSA_PKCS1_V1_5_SHA_256"
    assert called == []
    KmsSignatureVerifier(key, kms)(manifest)
    # the verifier pinned to another algorithm accepts nothing else
    with pytest.raises(SecurityViolation, match="does not accept"):
        KmsSignatureVerifier(key, kms, algorithm="RSASSA_PSS_SHA_256")(manifest)
    monkeypatch.setenv("SCHEMAGATE_SIGNING_ALGORITHM", "ECDSA_SHA_384")
    with pytest.raises(ConfigurationError, match="SHA-256"):
        sign_manifest(_manifest(), key, kms)


def test_describe_key_denied_falls_back_to_ecdsa(kms) -> None:
    from botocore.exceptions import ClientError

    key = _key(kms)

    def deny(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeKey")

    kms.meta.events.register("before-call.kms.DescribeKey", deny)
    manifest = _manifest()
    assert sign_manifest(manifest, key, kms)["algorithm"] == "ECDSA_SHA_256"
    KmsSignatureVerifier(key, kms)(manifest)
