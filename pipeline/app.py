"""The CDK app: ``cdk synth`` (cdk.json) or ``python -m pipeline.app`` synthesizes it.

Run plainly, it reads ``cdk.json``'s context itself and writes ``cdk.out/``.

Stacks: ``SchemagatePipeline`` and, for each environment with ``demoDatabase: true``, a demo
database stack (``SchemagateDemoDatabase``, or ``SchemagateDemoDatabase-<environment>``).
cdk-nag's AwsSolutions checks run on every synth; an unacknowledged finding is an error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from aws_cdk import App, Environment, Tags

from pipeline import inlined_buildspec
from pipeline.config import PipelineConfig, PipelineConfigError
from pipeline.nag_policy import check_app
from pipeline.stacks import DemoDatabaseStack, PipelineStack

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_app(app: App, *, project_root: Path = REPO_ROOT) -> dict[str, object]:
    """Add the stacks the configuration asks for to ``app``; returns them by name."""
    config = PipelineConfig.from_context(app.node.try_get_context)
    buildspec_path = Path(config.buildspec_path)
    if not buildspec_path.is_absolute():
        buildspec_path = project_root / buildspec_path
    buildspec = inlined_buildspec.load_buildspec(buildspec_path)
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stacks: dict[str, object] = {}
    targets = {}
    for environment in config.environments:
        if not environment.demo_database:
            continue
        name = demo_stack_name(environment.name, single=config.legacy_single_database)
        demo = DemoDatabaseStack(
            app,
            name,
            config=config,
            env=env,
            description=f"schemagate demo ({environment.name}): RDS PostgreSQL in private subnets",
        )
        stacks[name] = demo
        targets[environment.name] = demo.target
    stacks["SchemagatePipeline"] = PipelineStack(
        app,
        "SchemagatePipeline",
        config=config,
        buildspec=buildspec,
        buildspec_path=buildspec_path,
        targets=targets,
        env=env,
        description="schemagate: gated PostgreSQL migration pipeline",
    )
    Tags.of(app).add("project", "schemagate")
    check_app(app)
    return stacks


def demo_stack_name(environment: str, *, single: bool) -> str:
    """``SchemagateDemoDatabase`` for the single-database keys, else one per environment."""
    return "SchemagateDemoDatabase" if single else f"SchemagateDemoDatabase-{environment}"


def _context_when_run_plainly() -> dict[str, object] | None:
    """``python -m pipeline.app`` outside the CDK CLI: read cdk.json's context like the CLI would."""
    if any(name.startswith("CDK_CONTEXT") for name in os.environ):
        return None  # the CLI passes cdk.json context (and -c overrides) itself
    cdk_json = REPO_ROOT / "cdk.json"
    return json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})


def main() -> int:
    context = _context_when_run_plainly()
    outdir = None if context is None or "CDK_OUTDIR" in os.environ else str(REPO_ROOT / "cdk.out")
    app = App(context=context, outdir=outdir)
    try:
        build_app(app)
    except PipelineConfigError as error:
        print(f"error: {error}", file=sys.stderr)  # no traceback: the message names the key and the fix
        return error.exit_code
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
