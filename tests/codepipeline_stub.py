"""A local CodePipeline endpoint that records PutJobSuccessResult / PutJobFailureResult.

moto does not implement the job-result calls, so tests point ``AWS_ENDPOINT_URL_CODEPIPELINE`` at
this server and observe the real HTTP requests the handler's boto3 client sends (signed, serialized
by botocore from the API model, so a parameter the model does not know fails in the client).

Current botocore talks to CodePipeline in Smithy RPC v2 CBOR
(``POST /service/CodePipeline_20150709/operation/<Op>``); older releases (the boto3 in some Lambda
runtimes) use JSON 1.1 (``X-Amz-Target: CodePipeline_20150709.<Op>``).  Both are understood.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "CodePipeline_20150709"
OPERATIONS = ("PutJobSuccessResult", "PutJobFailureResult")
# how often serve_forever looks for shutdown(): its default, 0.5 s, was a wait at every test's end
SHUTDOWN_POLL_S = 0.02


def _decode_cbor(body: bytes) -> Any:
    # botocore's own CBOR decoder (the one that reads CodePipeline's responses)
    from botocore.parsers import RpcV2CBORParser

    parser = RpcV2CBORParser()
    return parser.parse_data_item(parser.get_peekable_stream_from_bytes(body)) if body else {}


@dataclass
class JobResult:
    operation: str
    params: dict[str, Any]
    protocol: str  # "rpc-v2-cbor" | "json-1.1"
    signed: bool  # the request carried a SigV4 Authorization header

    @property
    def job_id(self) -> str:
        return self.params["jobId"]


class CodePipelineStub:
    """``with CodePipelineStub() as stub:`` ... ``stub.results`` (in the order received)."""

    def __init__(self) -> None:
        self.results: list[JobResult] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                if self.path.startswith(f"/service/{TARGET_PREFIX}/operation/"):
                    operation, protocol = self.path.rsplit("/", 1)[1], "rpc-v2-cbor"
                    params = _decode_cbor(body)
                elif target.startswith(TARGET_PREFIX + "."):
                    operation, protocol = target.split(".", 1)[1], "json-1.1"
                    params = json.loads(body or b"{}")
                else:
                    self.send_error(404, "not a CodePipeline request")
                    return
                if operation not in OPERATIONS:
                    self.send_error(400, f"the stub does not implement {operation}")
                    return
                with stub._lock:
                    stub.results.append(
                        JobResult(operation, params, protocol, signed="Authorization" in self.headers)
                    )
                if protocol == "rpc-v2-cbor":
                    payload, headers = (
                        b"\xa0",
                        {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                    )
                else:
                    payload, headers = b"{}", {"Content-Type": "application/x-amz-json-1.1"}
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("x-amzn-RequestId", f"stub-{len(stub.results)}")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> CodePipelineStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def only(self, job_id: str) -> JobResult:
        """The single result reported for ``job_id`` (fails when there is none or more than one)."""
        found = [r for r in self.results if r.params.get("jobId") == job_id]
        assert len(found) == 1, f"expected one job result for {job_id}, got {[r.operation for r in found]}"
        return found[0]
