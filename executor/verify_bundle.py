"""``python -m executor.verify_bundle DIR``: verify a bundle directory and its KMS signature.

The CodeBuild executor (for migrations that need longer than a Lambda may run) runs it on the
bundle CodePipeline extracted, before ``schemagate apply --bundle DIR``: the same checks the Lambda
makes (every file's checksum, ``bundle_sha256``, no file the manifest does not list, and the
signature of ``SCHEMAGATE_SIGNING_KEY_ID``).  Exit 0 verified, 1 refused, 2 misconfigured; the
message names what failed and the remedy.
"""

from __future__ import annotations

import os
import sys

from executor.bundle import load_bundle
from executor.errors import SchemagateError, SecurityViolation


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m executor.verify_bundle BUNDLE_DIR", file=sys.stderr)
        return 2
    key_id = os.environ.get("SCHEMAGATE_SIGNING_KEY_ID", "").strip()
    try:
        if not key_id:
            raise SecurityViolation(
                "SCHEMAGATE_SIGNING_KEY_ID is not set: the bundle's signature cannot be verified",
                remedy="give the build the signing key's ARN (the CDK app does)",
            )
        import boto3

        from executor.signing import KmsSignatureVerifier

        bundle = load_bundle(args[0], signature_verifier=KmsSignatureVerifier(key_id, boto3.client("kms")))
    except SchemagateError as error:
        print(f"error: [{error.category.value}] {error}", file=sys.stderr)
        return error.exit_code
    print(f"verified bundle {args[0]}: bundle_sha256 {bundle.bundle_sha256}, signed with {key_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
