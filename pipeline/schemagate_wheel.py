"""The schemagate the pipeline was deployed with, shipped to its builds as a wheel.

A team's repository holds its application and its migrations, not schemagate: the validation
builds (pipeline and pull requests) and the CodeBuild executor install this wheel, uploaded as a
deploy-time asset, so what judges and applies the migrations is exactly the version that was
deployed, and a pull request cannot change it.  The builds get ``SCHEMAGATE_WHEEL_URL`` (the
asset's ``s3://`` URL) and ``SCHEMAGATE_WHEEL_NAME`` (the wheel's file name, which pip needs).

The wheel is built at synth from a clean copy of the package sources (``pip wheel``, PyPI for the
build backend); its asset hash is the sources' hash, so an unchanged schemagate is not uploaded
again.  ``schemagateWheel`` in cdk.json names a prebuilt one instead.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aws_cdk import AssetHashType
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from pipeline.config import PipelineConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("executor", "validator", "schemagate", "pipeline")
PROJECT_FILES = ("pyproject.toml", "README.md")
URL_ENV = "SCHEMAGATE_WHEEL_URL"
NAME_ENV = "SCHEMAGATE_WHEEL_NAME"


def _sources(root: Path) -> list[Path]:
    files = [root / name for name in PROJECT_FILES]
    for package in PACKAGES:
        files += [
            p
            for p in sorted((root / package).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    return files


def sources_hash(root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for path in _sources(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_wheel(out_dir: Path, root: Path = REPO_ROOT) -> Path:
    """``pip wheel`` of a clean copy of the sources (no stale ``build/``); returns the wheel's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="schemagate-wheel-") as tmp:
        copy = Path(tmp) / "src"
        for path in _sources(root):
            target = copy / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out_dir), str(copy)],
            capture_output=True,
            text=True,
            check=False,
        )
    wheels = sorted(out_dir.glob("schemagate-*.whl"))
    if result.returncode != 0 or not wheels:
        raise PipelineConfigError(
            "schemagateWheel",
            f"pip could not build the schemagate wheel (exit {result.returncode}): "
            f"{result.stderr.strip()[-800:]}",
            remedy="check access to the Python package index (pip fetches the build backend), or build it "
            "elsewhere (`pip wheel --no-deps -w DIR .`) and pass -c schemagate:schemagateWheel=DIR/<wheel>",
        )
    return wheels[-1]


class SchemagateWheel(Construct):
    """The wheel as an S3 asset.  ``environment_variables`` for a build; ``grant_read(project)``."""

    def __init__(self, scope: Construct, construct_id: str, *, prebuilt: str | None = None) -> None:
        super().__init__(scope, construct_id)
        if prebuilt:
            path = Path(prebuilt)
            if not path.is_file() or not path.name.endswith(".whl"):
                raise PipelineConfigError(
                    "schemagateWheel",
                    f"{prebuilt} is not a wheel file",
                    remedy="point it at a schemagate-*.whl",
                )
            asset_hash = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            path = build_wheel(Path(tempfile.mkdtemp(prefix="schemagate-wheel-out-")))
            asset_hash = sources_hash()
        self.file_name = path.name
        self.asset = s3_assets.Asset(
            self, "Asset", path=str(path), asset_hash_type=AssetHashType.CUSTOM, asset_hash=asset_hash
        )

    @property
    def environment_variables(self) -> dict[str, str]:
        return {URL_ENV: self.asset.s3_object_url, NAME_ENV: self.file_name}

    def grant_read(self, grantee: iam.IGrantable) -> None:
        self.asset.grant_read(grantee)
