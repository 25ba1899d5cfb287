"""The GitHub Action (action.yml) run the way the runner runs a composite action: its ``run:`` steps,
one after the other, in bash with the runner's flags, with ``${{ }}`` expressions evaluated and a
``GITHUB_*`` environment of a pull_request event, against a local HTTP endpoint that plays the
GitHub REST API (no network).  ``uses:`` steps (setup-python, upload-sarif) cannot run here: the
test checks when their conditions let them run.

A pull request adds a blocking migration: annotations, SARIF, one PR comment created, the action
fails.  The branch is fixed and the action runs again: the same comment is updated (found by its
marker among other people's comments, across pages), the action passes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from tests.histories.flyway_billing import FILES, write

REPO = Path(__file__).resolve().parent.parent
ACTION = REPO / "action.yml"
SCHEMA = Path(__file__).parent / "sarif" / "sarif-schema-2.1.0-rtm.5.json"
MIGRATIONS = "src/main/resources/db/migration"
TOKEN = "ghs_pr_comment_token_0123456789"
PAGE_SIZE = 2  # the fake API pages its answers by 2, so the marker is looked for across pages

BLOCKING = """\
-- look up invoices by account on the account page
CREATE INDEX invoices_account_idx ON invoices (account_id);
"""
FIXED = """\
-- look up invoices by account on the account page (built without blocking writes)
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_account_idx ON invoices (account_id);
"""


# -- the GitHub API --------------------------------------------------------------------------------


class FakeGitHub:
    """Issue comments of one pull request, with GitHub's paging (Link: rel="next") and auth."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [
            {"id": 101, "body": "Looks good, but can we index this?", "user": {"login": "alice"}},
            {"id": 102, "body": "The account page is slow in production.", "user": {"login": "bob"}},
            {"id": 103, "body": "+1", "user": {"login": "carol"}},
        ]
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        self.next_id = 900
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def _route(self, method: str) -> None:
                parts = urlsplit(self.path)
                api.requests.append((method, parts.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"message": "Bad credentials"})
                listing = re.fullmatch(r"/repos/acme/billing-service/issues/7/comments", parts.path)
                one = re.fullmatch(r"/repos/acme/billing-service/issues/comments/(\d+)", parts.path)
                if listing and method == "GET":
                    page = int(parse_qs(parts.query).get("page", ["1"])[0])
                    chunk = api.comments[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
                    more = len(api.comments) > page * PAGE_SIZE
                    link = {"Link": f'<{api.url}{parts.path}?per_page=100&page={page + 1}>; rel="next"'}
                    return self._answer(200, chunk, link if more else None)
                if listing and method == "POST":
                    comment = {
                        "id": api.next_id,
                        "body": self._body()["body"],
                        "user": {"login": "github-actions[bot]"},
                    }
                    comment["html_url"] = (
                        f"https://github.example/acme/billing-service/pull/7#issuecomment-{api.next_id}"
                    )
                    api.next_id += 1
                    api.comments.append(comment)
                    return self._answer(201, comment)
                if one and method == "PATCH":
                    edited: dict[str, Any] | None = next(
                        (c for c in api.comments if c["id"] == int(one.group(1))), None
                    )
                    if edited is None:
                        return self._answer(404, {"message": "Not Found"})
                    edited["body"] = self._body()["body"]
                    return self._answer(200, edited)
                return self._answer(404, {"message": "Not Found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PATCH(self) -> None:
                self._route("PATCH")

        return Handler

    def __enter__(self) -> FakeGitHub:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if "<!-- schemagate:report -->" in c["body"]]


# -- the runner ------------------------------------------------------------------------------------


def lookup(path: str, contexts: dict[str, Any]) -> Any:
    value: Any = contexts
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||\(|\))|(?P<name>[A-Za-z_][\w.-]*))")


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    """The subset of GitHub's expression language action.yml uses: context paths, '' strings, ==,
    !=, &&, ||, parentheses; null compares like ''."""
    tokens = []
    pos = 0
    text = expression.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"cannot read {text[pos:]!r} in {expression!r}"
        pos = m.end()
        if m.group("str") is not None:
            tokens.append(("value", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("op"):
            tokens.append(("op", m.group("op")))
        else:
            name = m.group("name")
            literal = {"true": True, "false": False, "null": None}
            tokens.append(("value", literal[name] if name in literal else lookup(name, contexts)))
    at = 0

    def text_of(v: Any) -> str:
        return "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    def primary() -> Any:
        nonlocal at
        kind, value = tokens[at]
        at += 1
        if (kind, value) == ("op", "("):
            inner = disjunction()
            at += 1
            return inner
        return value

    def comparison() -> Any:
        nonlocal at
        left = primary()
        while at < len(tokens) and tokens[at] in (("op", "=="), ("op", "!=")):
            op = tokens[at][1]
            at += 1
            right = primary()
            left = (text_of(left) == text_of(right)) == (op == "==")
        return left

    def conjunction() -> Any:
        nonlocal at
        left = comparison()
        while at < len(tokens) and tokens[at] == ("op", "&&"):
            at += 1
            right = comparison()
            left = left and right
        return left

    def disjunction() -> Any:
        nonlocal at
        left = conjunction()
        while at < len(tokens) and tokens[at] == ("op", "||"):
            at += 1
            right = conjunction()
            left = left or right
        return left

    result = disjunction()
    assert at == len(tokens), expression
    return result


def substitute(text: str, contexts: dict[str, Any]) -> str:
    def one(m: re.Match) -> str:
        value = evaluate(m.group(1), contexts)
        return "" if value is None else str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def run_action(
    inputs: dict[str, str], env: dict[str, str], event: dict[str, Any], workdir: Path
) -> tuple[int, str, list[str], dict[str, Any]]:
    """Run action.yml's steps; returns (exit code of the failing or last step, stdout+stderr of the
    run steps, names of the ``uses:`` steps whose condition held, step outputs)."""
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    given = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    steps: dict[str, Any] = {}
    contexts: dict[str, Any] = {
        "github": {"token": "ghs_default", "event": event, "event_name": env["GITHUB_EVENT_NAME"]},
        "steps": steps,
    }
    contexts["inputs"] = {k: substitute(str(v), contexts) for k, v in given.items()} | inputs
    output, would_use, code = [], [], 0
    for n, step in enumerate(action["runs"]["steps"]):
        condition = step.get("if")
        if condition is not None and not evaluate(condition.removeprefix("${{").removesuffix("}}"), contexts):
            continue
        if "uses" in step:
            would_use.append(step["uses"])
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], f"step {step['name']}: expressions belong in env, not in the script"
        outputs_file = workdir / f"output-{n}"
        outputs_file.write_text("")
        script = workdir / f"step-{n}.sh"
        script.write_text(step["run"])
        step_env = {**env, "GITHUB_OUTPUT": str(outputs_file)}
        step_env |= {k: substitute(str(v), contexts) for k, v in (step.get("env") or {}).items()}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=env["GITHUB_WORKSPACE"],
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output.append(done.stdout + done.stderr)
        values = dict(line.split("=", 1) for line in outputs_file.read_text().splitlines() if "=" in line)
        if step.get("id"):
            steps[step["id"]] = {"outputs": values}
        code = done.returncode
        if code:
            break
    return code, "".join(output), would_use, steps


# -- the repository -------------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.test", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of a repository whose main holds a 22-file Flyway history in a subdirectory, checked
    out at a pull request's branch (as actions/checkout leaves it: the base branch not fetched)."""
    origin = tmp_path / "origin.git"
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "pyproject.toml").write_text(
        f'[project]\nname = "billing"\n\n[tool.schemagate]\nmigrations = "{MIGRATIONS}"\n', encoding="utf-8"
    )
    write(seed / MIGRATIONS, FILES)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "history")
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "--single-branch", "--branch", "main", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "feature/account-page")
    (work / MIGRATIONS / "2026" / "V021__index_invoices_account.sql").write_text(BLOCKING, encoding="utf-8")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "index invoices by account")
    git(work, "update-ref", "-d", "refs/remotes/origin/main")  # the PR checkout has no base branch
    return work


def test_the_action_annotates_uploads_and_keeps_one_comment_created_then_updated(checkout, tmp_path):
    event = {"action": "synchronize", "number": 7, "pull_request": {"number": 7, "base": {"ref": "main"}}}
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    with FakeGitHub() as api:
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_BASE_REF": "main",
            "GITHUB_HEAD_REF": "feature/account-page",
            "GITHUB_REPOSITORY": "acme/billing-service",
            "GITHUB_API_URL": api.url,
            "GITHUB_WORKSPACE": str(checkout),
            "GITHUB_ACTION_PATH": str(REPO),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "RUNNER_TEMP": str(tmp_path),
            # schemagate is installed already (this virtualenv): pip must find it satisfied, offline
            "PIP_NO_INDEX": "1",
        }
        inputs = {
            "package": "schemagate",
            "python-version": "",
            "args": "--no-lint",
            "upload-sarif": "true",
            "token": TOKEN,
        }

        code, out, would_use, steps = run_action(inputs, env, event, tmp_path)
        assert code == 1, out  # the verdict step fails the job
        assert steps["validate"]["outputs"]["exit-code"] == "1"
        assert steps["base"]["outputs"]["ref"] == "origin/main"
        assert would_use == ["github/codeql-action/upload-sarif@v3"]  # setup-python skipped: ""
        new = f"{MIGRATIONS}/2026/V021__index_invoices_account.sql"
        assert f"::error file={new},line=2,col=38,title=require-concurrent-index-creation::" in out, out
        assert "created the schemagate comment on acme/billing-service#7" in out
        sarif = json.loads((checkout / "schemagate-reports" / "schemagate.sarif").read_text())
        jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
        assert "## schemagate validate: ❌ failed" in (tmp_path / "summary.md").read_text()
        [comment] = api.ours()
        assert comment["body"].startswith("<!-- schemagate:report -->\n## schemagate validate: ❌ failed")
        assert "require-concurrent-index-creation" in comment["body"]
        first_id = comment["id"]

        # the developer fixes the branch; the workflow runs again
        (checkout / MIGRATIONS / "2026" / "V021__index_invoices_account.sql").write_text(
            FIXED, encoding="utf-8"
        )
        git(checkout, "commit", "-qam", "build the index concurrently")
        api.requests.clear()
        code, out, _, steps = run_action(inputs, env, event, tmp_path)
        assert code == 0, out
        assert "updated the schemagate comment on acme/billing-service#7" in out
        [comment] = api.ours()  # still one, the same one, now saying it passed
        assert comment["id"] == first_id
        assert comment["body"].startswith("<!-- schemagate:report -->\n## schemagate validate: ✅ passed")
        assert len(api.comments) == 4  # the three human comments are untouched
        methods = [m for m, _, _ in api.requests]
        assert methods.count("PATCH") == 1 and "POST" not in methods
        assert methods.count("GET") == 2  # two pages of comments
        assert {auth for _, _, auth in api.requests} == {f"Bearer {TOKEN}"}
        assert TOKEN not in out  # the token is never printed


def test_the_comment_step_is_skipped_outside_pull_requests_and_on_configuration_errors(tmp_path):
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    comment = next(s for s in action["runs"]["steps"] if s["name"] == "Comment on the pull request")
    upload = next(s for s in action["runs"]["steps"] if "uses" in s and "upload-sarif" in s["uses"])
    condition = comment["if"]
    base = {"inputs": {"comment": "true", "upload-sarif": "true"}, "steps": {"validate": {"outputs": {}}}}
    push = {**base, "github": {"event": {}}}
    assert not evaluate(condition, push | {"steps": {"validate": {"outputs": {"exit-code": "1"}}}})
    pr = {**base, "github": {"event": {"pull_request": {"number": 7}}}}
    assert evaluate(condition, pr | {"steps": {"validate": {"outputs": {"exit-code": "1"}}}})
    assert not evaluate(condition, pr | {"steps": {"validate": {"outputs": {"exit-code": "2"}}}})
    assert not evaluate(upload["if"], pr | {"steps": {"validate": {"outputs": {"exit-code": "2"}}}})
    off = {**pr, "inputs": {"comment": "false"}}
    assert not evaluate(condition, off | {"steps": {"validate": {"outputs": {"exit-code": "0"}}}})


def test_the_documented_workflow_uses_this_action_with_the_permissions_it_needs():
    docs = (REPO / "docs" / "github.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", docs, re.S)
    assert block, "docs/github.md has the copy-paste workflow"
    workflow = yaml.safe_load(block.group(1))
    job = next(iter(workflow["jobs"].values()))
    assert job["permissions"]["pull-requests"] == "write"
    assert job["permissions"]["security-events"] == "write"
    checkout, action = job["steps"][0], job["steps"][-1]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    assert action["uses"].startswith("schemagate/schemagate@")
    declared = yaml.safe_load(ACTION.read_text(encoding="utf-8"))["inputs"]
    assert set(action.get("with", {})) <= set(declared)
    assert "pull_request" in (workflow.get("on") or workflow.get(True))
