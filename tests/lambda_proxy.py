"""The one home-made piece of the emulated pipeline: a loopback proxy between moto and Lambda.

moto's Step Functions engine sends every service call to http://localhost:$MOTO_PORT. This proxy
listens there and:
- sends Lambda Invoke (POST /2015-03-31/functions/{name}/invocations) to `cargo lambda watch`,
  turning a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]) into NAME;
- turns watch's HTTP 500 with an errorType body into HTTP 200 + X-Amz-Function-Error: Unhandled,
  which is what Lambda answers, so Retry and Catch behave as on AWS;
- forwards everything else to moto unchanged.
Each invocation is appended to the log file as one JSON line: function, status, errorType.

Usage: lambda_proxy.py LISTEN_PORT MOTO_PORT WATCH_PORT LOG_FILE
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


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the JSON log says what matters
        pass

    def _forward(self, port, path):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
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
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy).serve_forever()
