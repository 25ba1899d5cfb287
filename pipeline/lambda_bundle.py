"""The executor Lambda's code package, built without Docker.

``pip install --platform manylinux2014_<arch> --only-binary=:all:`` fetches the Linux wheels for
the Lambda's runtime and architecture whatever machine runs synth, so ``cdk synth`` works on a
laptop or CI runner without Docker.  The package is the runtime dependencies plus the
``executor/`` package (boto3 is in the Lambda runtime already).  No CDK import here, so a
benchmark or CI step can call :func:`build_lambda_package` cheaply; the CDK side is
``pipeline.executor_function.LocalPipBundling``.

    python -m pipeline.lambda_bundle OUT_DIR [--arch x86_64|arm64]

builds the same package by hand (for a size check, or to prebuild it for
``-c schemagate:executorAssetDir=OUT_DIR``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXECUTOR_DIR = REPO_ROOT / "executor"

# What the executor imports at run time besides the standard library and boto3.
RUNTIME_REQUIREMENTS = ("psycopg2-binary>=2.9.9,<3", "aws-lambda-powertools>=3.0,<4")

PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


class LambdaPackageError(RuntimeError):
    """pip could not build the package; the message carries pip's output and a remedy."""


def build_lambda_package(out_dir: str | Path, *, arch: str = "x86_64", python_version: str = "3.12") -> Path:
    """Install the executor's runtime dependencies for Lambda and copy ``executor/`` into out_dir.

    Returns out_dir.  Raises LambdaPackageError when pip fails (no network, no wheel for the
    platform) instead of falling back to Docker.
    """
    if arch not in PLATFORMS:
        raise ValueError(f"arch must be one of {', '.join(PLATFORMS)}, got {arch!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        PLATFORMS[arch],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--upgrade",
        "--target",
        str(out),
        *RUNTIME_REQUIREMENTS,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LambdaPackageError(
            f"pip could not build the executor Lambda package for {PLATFORMS[arch]} / Python "
            f"{python_version} (exit {result.returncode}):\n{result.stderr.strip()}\n"
            "remedy: check network access to PyPI (or your pip index), or prebuild the package "
            "with `python -m pipeline.lambda_bundle DIR` elsewhere and synth with "
            "-c schemagate:executorAssetDir=DIR"
        )
    # Drop what pip leaves that the Lambda never needs.
    for leftover in out.glob("bin"):
        shutil.rmtree(leftover, ignore_errors=True)
    target = out / "executor"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(EXECUTOR_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _precompile(out, python_version)
    return out


def _precompile(out: Path, python_version: str) -> bool:
    """Ship bytecode so cold starts don't compile (``/var/task`` is read-only in Lambda).

    Bytecode is version-specific: it is written only when an interpreter of the Lambda's Python
    version is at hand (this one, or ``python3.X`` on PATH); otherwise the package ships source
    only, which works but costs the first import a few hundred milliseconds.  ``unchecked-hash``
    makes the .pyc files valid whatever the files' modification times in the asset.
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        interpreter: str | None = sys.executable
    else:
        interpreter = shutil.which(f"python{python_version}")
    if interpreter is None:
        return False
    result = subprocess.run(
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args(argv)
    out = build_lambda_package(args.out_dir, arch=args.arch, python_version=args.python_version)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"{out}: {size / 1_048_576:.1f} MiB unzipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
