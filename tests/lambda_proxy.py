"""The one home-made piece of the emulated pipeline: a loopback proxy between moto and Lambda.

moto's Step Functions engine sends every service call to http://localhost:$MOTO_PORT. This proxy
listens there and:
- sends Lambda Invoke (POST /2015-03-31/functions/{name}/invocations) to `cargo lambda watch`,
  turning a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]) into NAME;
- turns watch's HTTP 500 with an errorType body into HTTP 200 + X-Amz-Function-Error: Unhandled,
  which is what Lambda answers, so Retry and Catch behave as on AWS;
- forwards everything else to moto unchanged.
Each invocation is appended to the log file as one JSON line: function, status, errorType.

With a PRINCIPAL_FILE (JSON: the state machine role's temporary credentials and its policy
documents from infra/template.yaml, made by cfn_stack.py), the proxy acts as the state machine's
role, as AWS does:
- a Lambda Invoke is allowed only when a document allows lambda:InvokeFunction on the function's
  ARN (moto's own policy evaluator, with the real ARN); otherwise Lambda's 403
  AccessDeniedException naming the role, the action and the function;
- every other call of the engine (signed with moto's fixed key "ak": the Distributed Map's
  ItemReader and ResultWriter in S3) is signed again with the role's credentials, so moto's access
  control checks it against the role's policies.
FUNCTION_PREFIX (e.g. "snap2dsql-", the stack's name) is taken off a function name to find the
binary that `cargo lambda watch` serves.

Usage: lambda_proxy.py LISTEN_PORT MOTO_PORT WATCH_PORT LOG_FILE [PRINCIPAL_FILE FUNCTION_PREFIX]
"""

import http.client
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}
LOG_LOCK = threading.Lock()


def function_name(raw):
    """NAME from NAME, NAME:QUALIFIER or a full function ARN."""
    name = unquote(raw)
    if name.startswith("arn:"):
        # arn:aws:lambda:region:account:function:NAME[:QUALIFIER]
        parts = name.split(":")
        return parts[6]
    return name.split(":")[0]


def function_arn(raw, region, account):
    name = unquote(raw)
    if name.startswith("arn:"):
        return name
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def invoke_denied(arn):
    """Lambda's answer when the caller's policies do not allow the invocation, or None."""
    if PRINCIPAL is None:
        return None
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = [
        IAMPolicy(json.dumps(doc)).is_action_permitted("lambda:InvokeFunction", arn)
        for doc in PRINCIPAL["documents"]
    ]
    if PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results:
        return None
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{PRINCIPAL['role']}/states is not authorized "
        f"to perform: lambda:InvokeFunction on resource: {arn} because no identity-based policy "
        "allows the lambda:InvokeFunction action"
    )
    body = json.dumps({"Type": "User", "message": message}).encode()
    return 403, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")], body


def signed_as_engine(headers):
    return "Credential=ak/" in (headers.get("Authorization") or "")


def resign(method, path, headers, body):
    """The request signed with the state machine role's credentials instead of moto's "ak"."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth_header = headers["Authorization"]
    scope = auth_header.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    region, service = scope[2], scope[3]
    drop = {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
    kept = {k: v for k, v in headers.items() if k.lower() not in drop}
    host = headers.get("Host") or f"127.0.0.1:{MOTO_PORT}"
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body or b"", headers=kept)
    creds = Credentials(
        PRINCIPAL["access_key_id"], PRINCIPAL["secret_access_key"], PRINCIPAL["session_token"]
    )
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(creds, service, region).add_auth(request)
    return dict(request.headers.items())


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the JSON log says what matters
        pass

    def _forward(self, port, path):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if PRINCIPAL is not None and port == MOTO_PORT and signed_as_engine(self.headers):
            headers = resign(self.command, path, dict(self.headers.items()), body)
            headers = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP - {"host"}}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
        conn.request(self.command, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        conn.close()
        return resp.status, out_headers, data

    def _reply(self, status, headers, data):
        self.send_response(status)
        head = self.command == "HEAD"
        for k, v in headers:
            if head or k.lower() != "content-length":
                self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _handle(self):
        m = INVOKE.match(self.path)
        if not m:
            self._reply(*self._forward(MOTO_PORT, self.path))
            return
        name = function_name(m.group(1))
        denied = invoke_denied(function_arn(m.group(1), REGION, ACCOUNT))
        if FUNCTION_PREFIX and name.startswith(FUNCTION_PREFIX):
            name = name[len(FUNCTION_PREFIX):]
        if denied is not None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with LOG_LOCK, open(LOG_FILE, "a", encoding="utf-8") as log:
                log.write(json.dumps({"function": name, "status": 403, "errorType": "AccessDeniedException"}) + "\n")
            self._reply(*denied)
            return
        status, headers, data = self._forward(
            WATCH_PORT, f"/2015-03-31/functions/{name}/invocations"
        )
        error_type = None
        if status >= 400:
            try:
                error_type = json.loads(data).get("errorType")
            except ValueError:
                error_type = None
            if error_type is not None:
                status = 200
                headers = [(k, v) for k, v in headers if k.lower() != "x-amz-function-error"]
                headers.append(("X-Amz-Function-Error", "Unhandled"))
        with LOG_LOCK, open(LOG_FILE, "a", encoding="utf-8") as log:
            log.write(json.dumps({"function": name, "status": status, "errorType": error_type}) + "\n")
        self._reply(status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


if __name__ == "__main__":
    LISTEN_PORT, MOTO_PORT, WATCH_PORT = (int(a) for a in sys.argv[1:4])
    LOG_FILE = sys.argv[4]
    PRINCIPAL, FUNCTION_PREFIX = None, ""
    REGION, ACCOUNT = "us-east-1", "123456789012"
    if len(sys.argv) > 6:
        with open(sys.argv[5], encoding="utf-8") as f:
            PRINCIPAL = json.load(f)
        FUNCTION_PREFIX = sys.argv[6]
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy).serve_forever()
