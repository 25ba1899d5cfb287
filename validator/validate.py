"""``schemagate validate`` as a function: structural checks -> lint -> safety -> (rehearsal) ->
bundle -> reports.  The CLI (``schemagate.cmd_validate``) and ``schemagate run`` are thin callers.

sqlfluff is by far the slowest check, so it is *started* first: uncached files go to worker
processes before the structural checks run, and their findings are collected after the safety
rules (keeping only files that parsed: a file with a syntax error reports that error alone).

A configuration problem (no migrations directory, no migration files, a bad setting) raises
``ConfigurationError`` (exit code 2); problems *in* the migrations are findings, and the result's
``exit_code`` is 1 when any of them blocks (``blocking_severity``), else 0.  The bundle is built
(in memory, and written when ``bundle_dir`` is given) only when nothing blocks; otherwise a bundle
left in ``bundle_dir`` by an earlier run is removed, so a failed build never ships a stale one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.bundle import Bundle, make_bundle, write_bundle
from executor.errors import ConfigurationError
from executor.manifest import MANIFEST_FILE, MIGRATIONS_DIR, Manifest
from validator.config import ValidatorConfig
from validator.findings import Finding, count_by_severity, has_errors
from validator.reports import BundleInfo, ReportData, write_reports
from validator.source import detect_source

STRUCTURAL_FAMILIES = ("naming", "order", "syntax", "integrity")


@dataclass
class ValidationResult:
    files: list[Any]  # validator.structural.MigrationFile
    findings: list[Finding]
    suppressions: list[Any] = field(default_factory=list)
    sections: list[Any] = field(default_factory=list)
    manifest: Manifest | None = None
    bundle_path: Path | None = None  # the directory written, when one was
    exit_code: int = 0
    bundle: Bundle | None = None  # the sealed in-memory bundle (None when findings block)
    report: ReportData | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    lint_stats: Any = None  # validator.lint.LintStats when lint ran
    structural: Any = None  # validator.structural.StructuralResult

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def _require_migrations_dir(config: ValidatorConfig) -> None:
    mig = config.migrations
    if not mig.exists():
        raise ConfigurationError(
            f"migrations directory {mig} does not exist",
            remedy="pass --migrations DIR, set [tool.schemagate] migrations in pyproject.toml, "
            "or create the first migration with `schemagate new <description>`",
            file=str(mig),
        )
    if not mig.is_dir():
        raise ConfigurationError(f"{mig} is not a directory", remedy="pass --migrations DIR", file=str(mig))


def _remove_stale_bundle(directory: Path) -> bool:
    """Delete a bundle an earlier run wrote into ``directory`` (only if it is one). True if removed."""
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "bundle_sha256" not in data or "migrations" not in data:
        return False
    manifest.unlink()
    shutil.rmtree(directory / MIGRATIONS_DIR, ignore_errors=True)
    return True


def _start_lint(config: ValidatorConfig, files: list[Any]) -> Any:
    """Start sqlfluff on every readable migration file *before* the structural checks: its workers
    run while this process parses and applies the safety rules (sqlfluff is the slow part)."""
    from validator.lint import LintTarget, start_lint

    try:
        from validator.safety import sqlfluff_overlap

        skip = sqlfluff_overlap(config)
    except ImportError:  # safety rules not installed: nothing to de-duplicate against
        skip = set()
    targets = [LintTarget(rel=f.rel, text=f.text, checksum=f.checksum) for f in files if f.text is not None]
    return start_lint(config, targets, skip_codes=skip)


def _lint_findings(job: Any, structural: Any, findings: list[Finding]) -> list[Finding]:
    """The job's findings for files that parsed (a file with a syntax error gets that error only)."""
    parsed = {p.rel for p in structural.parsed}
    broken = {f.file for f in findings if f.family == "syntax" and f.severity == "error"}
    return [f for f in job.result().findings if f.file in parsed and f.file not in broken]


def _review_checks(
    config: ValidatorConfig,
    structural: Any,
    findings: list[Finding],
    timings: dict[str, float],
    checks: list[str],
    base_ref: str | None,
    rehearse: bool,
    rehearsal_database_url: str | None,
) -> tuple[list[Any], list[Any]]:
    """Safety rules and the rehearsal; appends to ``findings``, ``timings`` and ``checks``."""
    from validator.gitref import new_files

    suppressions: list[Any] = []
    try:
        from validator.safety import check_safety
    except ImportError:
        check_safety = None
    if check_safety is not None:
        started = time.perf_counter()
        safety = check_safety(structural.parsed, config)
        findings += safety.findings
        suppressions = list(safety.suppressions)
        timings["safety"] = time.perf_counter() - started
        checks.append("safety")

    sections: list[Any] = []
    if rehearse:
        from validator.rehearsal import rehearse as run_rehearsal

        started = time.perf_counter()
        new = (
            new_files(structural.files, config.migrations, base_ref, structural.layout) if base_ref else None
        )
        rehearsal = run_rehearsal(config, structural, new=new, database_url=rehearsal_database_url)
        findings += rehearsal.findings
        sections.append(rehearsal)
        timings["rehearsal"] = time.perf_counter() - started
        checks.append("rehearsal")
    return suppressions, sections


def run_validation(
    config: ValidatorConfig,
    *,
    base_ref: str | None = None,
    lint: bool = True,
    rehearse: bool = False,
    rehearsal_database_url: str | None = None,
    sign_with_kms: str | None = None,
    bundle_dir: str | Path | None = None,
    reports_dir: str | Path | None = None,
) -> ValidationResult:
    from validator.gitref import resolve_base_ref
    from validator.structural import check_structure, discover_migrations

    _require_migrations_dir(config)
    if sign_with_kms and bundle_dir is None:
        raise ConfigurationError(
            "--sign-with-kms signs the bundle, but no bundle was asked for", remedy="add --bundle DIR"
        )
    base_ref = resolve_base_ref(base_ref)
    timings: dict[str, float] = {}
    checks = list(STRUCTURAL_FAMILIES)

    # the files are read once: lint, the structural checks and the bundle all see the same bytes
    started = time.perf_counter()
    discovered = discover_migrations(config)
    discovery_seconds = time.perf_counter() - started
    lint_job = _start_lint(config, discovered.files) if lint and config.lint.get("enabled", True) else None
    try:
        started = time.perf_counter()
        structural = check_structure(config, base_ref=base_ref, discovered=discovered)
        timings["structural"] = discovery_seconds + time.perf_counter() - started
        if not structural.files and not structural.findings:
            raise ConfigurationError(
                f"no migration files in {config.migrations}",
                remedy="add one with `schemagate new <description>`, "
                "or point --migrations at the directory that holds them",
                file=str(config.migrations),
            )
        findings: list[Finding] = list(structural.findings)
        suppressions, sections = _review_checks(
            config, structural, findings, timings, checks, base_ref, rehearse, rehearsal_database_url
        )
        lint_stats = None
        if lint_job is not None:
            started = time.perf_counter()
            findings += _lint_findings(lint_job, structural, findings)
            lint_stats = lint_job.stats
            timings["lint"] = lint_stats.seconds
            timings["lint_wait"] = time.perf_counter() - started
            checks.append("lint")
    finally:
        if lint_job is not None:
            lint_job.close()

    findings.sort(key=Finding.sort_key)
    blocking = has_errors(findings, config.blocking_severity)
    counts = count_by_severity(findings)
    source = detect_source(config.migrations, base_ref=base_ref)

    bundle: Bundle | None = None
    bundle_path: Path | None = None
    bundle_info: BundleInfo | None = None
    bundle_note: str | None = None
    if not blocking:
        bundle = make_bundle(
            structural.manifest_entries(),
            source=source,
            findings=counts,
            origin=str(config.migrations),
            layout=structural.layout,
        )
        if sign_with_kms:
            from executor.signing import sign_manifest

            sign_manifest(bundle.manifest, sign_with_kms)
        if bundle_dir is not None:
            bundle_path = Path(bundle_dir)
            write_bundle(bundle, bundle_path)
            bundle_info = BundleInfo(
                path=str(bundle_path),
                bundle_sha256=bundle.bundle_sha256,
                migrations=len(bundle.manifest.migrations),
                signed_with=sign_with_kms if bundle.manifest.signature else None,
            )
    elif bundle_dir is not None:
        n = sum(1 for f in findings if f.severity == "error" or config.blocking_severity == "warning")
        removed = _remove_stale_bundle(Path(bundle_dir))
        bundle_note = f"bundle not written: {n} blocking finding{'s' if n != 1 else ''}" + (
            f" (the earlier bundle in {bundle_dir} was removed)" if removed else ""
        )

    report = ReportData(
        files=[f.rel for f in structural.files],
        findings=findings,
        checks=checks,
        suppressions=suppressions,
        sections=sections,
        blocking_severity=config.blocking_severity,
        bundle=bundle_info,
        bundle_note=bundle_note,
        timings=timings,
        migrations_dir=str(config.migrations),
        source=source,
        notes=[
            f"lint: {lint_stats.linted} files linted, {lint_stats.cached} from the cache "
            f"({lint_stats.seconds:.1f} s)"
        ]
        if lint_stats is not None
        else [],
    )
    report_paths = write_reports(report, reports_dir) if reports_dir is not None else {}
    return ValidationResult(
        files=list(structural.files),
        findings=findings,
        suppressions=suppressions,
        sections=sections,
        manifest=bundle.manifest if bundle else None,
        bundle_path=bundle_path,
        exit_code=1 if blocking else 0,
        bundle=bundle,
        report=report,
        report_paths=report_paths,
        timings=timings,
        lint_stats=lint_stats,
        structural=structural,
    )
