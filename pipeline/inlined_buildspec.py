"""The repository's ``buildspec.yml``, read at synth time and inlined into the CodeBuild projects.

Inlining is the point: a pull request that edits ``buildspec.yml`` cannot change the gate it is
judged by; the new buildspec takes effect only when the stack is deployed again.

Two adjustments are made on the way in, both so the project wiring is right whatever the file
calls things:

- the ``reports`` entry (there must be at most one, JUNITXML) is keyed by the report group's ARN,
  so results land in the report group the stack creates (and exports to S3);
- ``CODEBUILD_BUILD_ID`` is added to ``env.exported-variables``, so the approval step can link to
  this build's report.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import PipelineConfigError

DEFAULT_REPORT = {"files": ["junit.xml"], "base-directory": "reports", "file-format": "JUNITXML"}
ALWAYS_EXPORTED = ("CODEBUILD_BUILD_ID",)
BUNDLE_SHA_VARIABLE = "SCHEMAGATE_BUNDLE_SHA256"


def load_buildspec(path: Path) -> dict[str, Any]:
    """Parse and sanity-check the buildspec; every problem names the file and the fix."""
    if not path.is_file():
        raise PipelineConfigError(
            "buildspecPath",
            f"{path} does not exist; the validation step is inlined from it at synth time",
            remedy="run synth from the repository root, or point buildspecPath at the buildspec",
        )
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineConfigError("buildspecPath", f"{path} is not valid YAML: {exc}") from None
    if (
        not isinstance(spec, dict)
        or str(spec.get("version")) != "0.2"
        or not isinstance(spec.get("phases"), dict)
    ):
        raise PipelineConfigError(
            "buildspecPath",
            f"{path} is not a CodeBuild buildspec (needs `version: 0.2` and `phases:`)",
        )
    reports = spec.get("reports") or {}
    if not isinstance(reports, dict) or len(reports) > 1:
        raise PipelineConfigError(
            "buildspecPath",
            f"{path}: `reports` must hold one JUNITXML report (it is bound to the stack's report group)",
        )
    for report in reports.values():
        file_format = str((report or {}).get("file-format", "JUNITXML")).upper()
        if file_format != "JUNITXML":
            raise PipelineConfigError(
                "buildspecPath", f"{path}: report file-format must be JUNITXML, got {file_format}"
            )
    return spec


def exported_variables(spec: dict[str, Any]) -> tuple[str, ...]:
    env = spec.get("env") or {}
    return tuple(env.get("exported-variables") or ())


def for_project(
    spec: dict[str, Any], *, report_group_arn: str, require_artifacts: bool, path: Path
) -> dict[str, Any]:
    """A copy of the buildspec bound to one project's report group."""
    bound = copy.deepcopy(spec)
    reports = bound.get("reports") or {"schemagate": DEFAULT_REPORT}
    (report,) = reports.values()
    report = dict(report or DEFAULT_REPORT)
    report["file-format"] = "JUNITXML"
    bound["reports"] = {report_group_arn: report}
    env = bound.setdefault("env", {})
    exported = list(env.get("exported-variables") or ())
    env["exported-variables"] = exported + [name for name in ALWAYS_EXPORTED if name not in exported]
    if require_artifacts and not bound.get("artifacts"):
        raise PipelineConfigError(
            "buildspecPath",
            f"{path} has no `artifacts` section, so the pipeline would have no bundle to approve",
            remedy="add `artifacts: {base-directory: <the --bundle dir>, files: ['**/*']}` to the buildspec",
        )
    return bound
