"""Bundle signatures with an asymmetric KMS key ("what was validated is what runs").

The validator signs ``bundle_sha256`` (the SHA-256 over everything in the manifest except the hash
and the signature) with ``kms:Sign`` and ``MessageType=DIGEST``: the 32 bytes of the hash are the
digest, so KMS signs exactly the value the executor recomputes.  The signature is stored in the
manifest as ``{"key_id", "algorithm", "value"}`` (``value`` base64).

The executor verifies with ``kms:Verify`` against the key *it* is configured with
(``SCHEMAGATE_SIGNING_KEY_ID``), never the key the manifest names: a bundle signed with any other
key, or not signed, is a ``SECURITY_VIOLATION``.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from executor.errors import ConfigurationError, PermissionDenied, SecurityViolation, aws_error_code
from executor.manifest import MANIFEST_FILE, Manifest

# Algorithms that sign a SHA-256 digest, in order of preference.  The digest is always SHA-256
# (bundle_sha256), so *_SHA_384 / *_SHA_512 algorithms cannot be used with MessageType=DIGEST.
SHA256_ALGORITHMS = ("ECDSA_SHA_256", "RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256")
# optional pin, for the signer (no kms:DescribeKey needed) and the verifier (nothing else accepted)
ALGORITHM_ENV = "SCHEMAGATE_SIGNING_ALGORITHM"

REMEDY_SIGN = (
    "rebuild the bundle with `schemagate validate --bundle DIR --sign-with-kms KEY`, using the key the "
    "executor is configured with (SCHEMAGATE_SIGNING_KEY_ID)"
)
REMEDY_KEY = (
    "use an asymmetric KMS key with KeyUsage SIGN_VERIFY and KeySpec ECC_NIST_P256 (ECDSA_SHA_256) "
    "or RSA_2048 and larger"
)


def _kms(kms_client: Any | None) -> Any:
    if kms_client is not None:
        return kms_client
    from executor import aws_clients  # imports boto3 lazily: the validator only needs it when it signs

    return aws_clients.client("kms")


def _digest(manifest: Manifest) -> bytes:
    if not manifest.bundle_sha256:
        raise SecurityViolation(
            f"{MANIFEST_FILE} has no bundle_sha256 to sign or verify", file=MANIFEST_FILE, remedy=REMEDY_SIGN
        )
    try:
        digest = bytes.fromhex(manifest.bundle_sha256)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise SecurityViolation(
            f"bundle_sha256 in {MANIFEST_FILE} is not a SHA-256 hex digest",
            file=MANIFEST_FILE,
            remedy=REMEDY_SIGN,
        )
    return digest


def _error_code(exc: Exception) -> str:
    """The AWS error code, or the exception's class name when it carries none (shown in messages)."""
    return aws_error_code(exc, default=type(exc).__name__)


def _pinned_algorithm() -> str | None:
    pinned = os.environ.get(ALGORITHM_ENV, "").strip() or None
    if pinned is not None and pinned not in SHA256_ALGORITHMS:
        raise ConfigurationError(
            f"{ALGORITHM_ENV}={pinned} does not sign a SHA-256 digest",
            remedy=f"set it to one of {', '.join(SHA256_ALGORITHMS)}",
        )
    return pinned


def _choose_algorithm(kms: Any, key_id: str) -> str:
    try:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    except Exception as exc:  # botocore ClientError and friends
        if _error_code(exc) in ("AccessDeniedException", "AccessDenied"):
            # a role allowed only kms:Sign: try the default; KMS refuses a key it does not fit
            return SHA256_ALGORITHMS[0]
        raise _kms_error(exc, key_id, "describe") from None
    if meta.get("KeyUsage") != "SIGN_VERIFY":
        raise ConfigurationError(
            f"KMS key {key_id} has KeyUsage {meta.get('KeyUsage')}, not SIGN_VERIFY", remedy=REMEDY_KEY
        )
    offered = meta.get("SigningAlgorithms") or []
    for algorithm in SHA256_ALGORITHMS:
        if algorithm in offered:
            return algorithm
    raise ConfigurationError(
        f"KMS key {key_id} (KeySpec {meta.get('KeySpec')}) cannot sign a SHA-256 digest "
        f"(it offers {', '.join(offered) or 'no signing algorithm'})",
        remedy=REMEDY_KEY,
    )


def _kms_error(exc: Exception, key_id: str, what: str) -> Exception:
    code = _error_code(exc)
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return PermissionDenied(
            f"not allowed to {what} with KMS key {key_id} ({code})",
            remedy=f"grant kms:{what.capitalize()} (and kms:DescribeKey) on {key_id} to this role",
        )
    if code in ("NotFoundException", "DisabledException", "KMSInvalidStateException"):
        return ConfigurationError(f"KMS key {key_id} cannot be used ({code})", remedy=REMEDY_KEY)
    if code in ("InvalidKeyUsageException", "ValidationException"):
        return ConfigurationError(f"KMS key {key_id} refused the request ({code})", remedy=REMEDY_KEY)
    return exc


def sign_manifest(
    manifest: Manifest, key_id: str, kms_client: Any | None = None, *, algorithm: str | None = None
) -> dict[str, str]:
    """Sign ``manifest.bundle_sha256`` with the KMS key; stores and returns ``manifest.signature``.

    The manifest must be sealed (``bundle_sha256`` set).  ``algorithm`` defaults to
    ``$SCHEMAGATE_SIGNING_ALGORITHM``, else to the first of ``SHA256_ALGORITHMS`` the key offers
    (asked with ``kms:DescribeKey``; without that permission, ``ECDSA_SHA_256``).
    """
    kms = _kms(kms_client)
    digest = _digest(manifest)
    if manifest.compute_sha256() != manifest.bundle_sha256:
        raise SecurityViolation(
            "the manifest changed after it was sealed; "
            "refusing to sign a hash that does not match its content",
            file=MANIFEST_FILE,
            remedy="call manifest.seal() after the last change, then sign",
        )
    if algorithm is None:
        algorithm = _pinned_algorithm() or _choose_algorithm(kms, key_id)
    elif algorithm not in SHA256_ALGORITHMS:
        raise ConfigurationError(
            f"signing algorithm {algorithm} does not sign a SHA-256 digest",
            remedy=f"use one of {', '.join(SHA256_ALGORITHMS)}",
        )
    try:
        response = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm)
    except Exception as exc:
        raise _kms_error(exc, key_id, "sign") from None
    signature = {
        "key_id": str(response.get("KeyId") or key_id),
        "algorithm": str(response.get("SigningAlgorithm") or algorithm),
        "value": base64.b64encode(response["Signature"]).decode("ascii"),
    }
    manifest.signature = signature
    return signature


class KmsSignatureVerifier:
    """``verifier(manifest)`` raises ``SecurityViolation`` unless the manifest carries a signature of
    its ``bundle_sha256`` that KMS verifies with *this* key.  Pass it to ``verify_contents`` /
    ``load_bundle`` as ``signature_verifier``.
    """

    def __init__(self, key_id: str, kms_client: Any | None = None, *, algorithm: str | None = None) -> None:
        if not key_id:
            raise ConfigurationError("no KMS key given to verify bundle signatures", remedy=REMEDY_KEY)
        self.key_id = key_id
        self.algorithm = algorithm or _pinned_algorithm()  # None: any of SHA256_ALGORITHMS
        self._kms_client = kms_client

    def __repr__(self) -> str:
        return f"KmsSignatureVerifier(key_id={self.key_id!r})"

    def __call__(self, manifest: Manifest) -> None:
        signature = manifest.signature
        if not signature:
            raise SecurityViolation(
                f"the bundle is not signed, but this executor requires a signature by KMS key {self.key_id}",
                file=MANIFEST_FILE,
                rule="bundle-signature",
                remedy=REMEDY_SIGN,
            )
        if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
            raise SecurityViolation(
                f"the signature in {MANIFEST_FILE} is malformed (expected key_id, algorithm, value)",
                file=MANIFEST_FILE,
                rule="bundle-signature",
                remedy=REMEDY_SIGN,
            )
        algorithm = str(signature.get("algorithm") or "")
        signed_by = str(signature.get("key_id") or "an unnamed key")
        if algorithm not in SHA256_ALGORITHMS or (self.algorithm and algorithm != self.algorithm):
            raise SecurityViolation(
                f"the bundle signature uses algorithm {algorithm or '(none)'}, "
                "which this executor does not accept",
                file=MANIFEST_FILE,
                rule="bundle-signature",
                remedy=REMEDY_SIGN,
            )
        try:
            value = base64.b64decode(signature["value"], validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if not value:
            raise SecurityViolation(
                f"the signature value in {MANIFEST_FILE} is not base64",
                file=MANIFEST_FILE,
                rule="bundle-signature",
                remedy=REMEDY_SIGN,
            )
        digest = _digest(manifest)
        kms = _kms(self._kms_client)
        try:
            response = kms.verify(
                KeyId=self.key_id,
                Message=digest,
                MessageType="DIGEST",
                Signature=value,
                SigningAlgorithm=algorithm,
            )
            valid = bool(response.get("SignatureValid"))
        except Exception as exc:
            code = _error_code(exc)
            # real KMS raises KMSInvalidSignatureException on a bad signature instead of returning
            # SignatureValid=false; a ValidationException here means the signature's algorithm does
            # not belong to this key, i.e. another key made it
            if code not in ("KMSInvalidSignatureException", "ValidationException"):
                raise _kms_error(exc, self.key_id, "verify") from None
            valid = False
        if not valid:
            raise SecurityViolation(
                f"the bundle signature (made by {signed_by}) does not verify with KMS key {self.key_id}: "
                "the manifest was changed after signing, or it was signed with another key",
                file=MANIFEST_FILE,
                rule="bundle-signature",
                remedy=REMEDY_SIGN,
                context={"signed_by": signed_by, "required_key": self.key_id},
            )
