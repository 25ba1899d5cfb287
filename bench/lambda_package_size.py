"""Benchmark: size of the executor Lambda's deployment package.

Builds the package the CDK app deploys (``pipeline.lambda_bundle.build_lambda_package``: the
``executor/`` package plus psycopg2-binary and Powertools, manylinux wheels for the Lambda's Python
and architecture, fetched by pip without Docker; boto3 comes with the runtime) and prints, from the
same build:

* unzipped size, total and per top-level component (share of the total)
* zipped size (what is uploaded; Lambda's limits are 50 MB zipped for a direct upload, 250 MB unzipped)

Target: < 20 MB unzipped.  Needs network access to PyPI (or a pip index).

    .venv/bin/python bench/lambda_package_size.py [--arch x86_64|arm64] [--python-version 3.12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# the package exactly as the CDK app bundles it (the builder is plain pip: no CDK import)
from pipeline.lambda_bundle import PLATFORMS, build_lambda_package  # noqa: E402

TARGET_MB = 20.0
MB = 1_000_000


def sizes(root: Path) -> dict[str, int]:
    """Bytes per top-level entry (dist-info folded into its distribution's line)."""
    found: dict[str, int] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        top = path.relative_to(root).parts[0]
        key = top.split("-")[0] if top.endswith(".dist-info") else top.removesuffix(".py")
        key = key.removesuffix(".libs").replace("psycopg2_binary", "psycopg2")
        found[key] = found.get(key, 0) + path.stat().st_size
    return found


def zipped_size(root: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
    return len(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--keep", help="build into this directory and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "package"
        build_lambda_package(out, arch=args.arch, python_version=args.python_version)
        parts = sizes(out)
        total = sum(parts.values())
        zipped = zipped_size(out)

    print(f"Lambda package ({PLATFORMS[args.arch]}, Python {args.python_version}), unzipped:")
    for name, size in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {size / MB:7.2f} MB  {size / total:6.1%}")
    share = total / MB / TARGET_MB
    print(f"  {'total':<28} {total / MB:7.2f} MB  (target < {TARGET_MB:.0f} MB: {share:.0%} of it)")
    print(f"  zipped                       {zipped / MB:7.2f} MB  (ratio {zipped / total:.2f})")
    return 0 if total < TARGET_MB * MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
