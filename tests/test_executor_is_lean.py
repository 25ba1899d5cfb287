"""The executor is what the Lambda deploys: it must not pull in the build-time stack.

docs/architecture.md: the executor depends only on psycopg2 and boto3 so the Lambda package stays small;
the validator imports the executor, never the other way round.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = (
    "pglast",
    "sqlfluff",
    "aws_cdk",
    "constructs",
    "cdk_nag",
    "click",
    "validator",
    "schemagate",
    "pipeline",
)
ALLOWED_THIRD_PARTY = {"psycopg2", "boto3", "botocore", "aws_lambda_powertools"}


def test_importing_the_handler_loads_nothing_from_the_build_time_stack() -> None:
    code = (
        "import json, sys; import executor.handler; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert "executor" in loaded and "psycopg2" in loaded
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_executor_modules_import_only_the_standard_library_and_the_runtime_dependencies() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((REPO_ROOT / "executor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in stdlib or top == "executor" or top in ALLOWED_THIRD_PARTY, (
                    f"{path.relative_to(REPO_ROOT)} imports {name}: the Lambda package would need it"
                )
