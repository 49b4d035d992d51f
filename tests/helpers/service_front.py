"""A real sc2deploy Service (sc2deploy.serving.service) behind the standard library's
threading HTTP server on 127.0.0.1: the server the device client (``sc2deploy stream``) talks
to in tests/stream/test_client.py and tests/stream/test_adaptive.py (the Ray Serve front is tested
in tests/serving/test_ray_app.py).

    POST ─ faults.pop(0), seen ─ arrived(handler, body) ─ Service.prepare ─ run_batch ─ reply

``faults`` lists what happens to the next requests: "drop" (answered, then the connection is
closed before the reply), "503", "404" (not sc2deploy's: a proxy's, in plain text); ``seen``
the request ids in the order they arrived. A subclass shapes the link in ``arrived``.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sc2deploy.errors import Refused
from sc2deploy.serving.service import ServeOptions, Service, refusal_body


class ServiceFront:
    """``bundles``: the first is served, the others as its family (a ladder's other points)."""

    protocol_version = "HTTP/1.0"  # http.server's default

    def __init__(self, bundles, token: str):
        first, *rest = [b.path for b in bundles]
        self.service = Service(ServeOptions(bundles=(first, *rest)), token)
        self.faults, self.seen = [], []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = front.protocol_version

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fault = front.faults.pop(0) if front.faults else None
                front.seen.append(self.headers["X-Request-Id"])
                front.arrived(self, body)
                if fault == "503":
                    return self._reply(503, {"error": "restarting"})
                if fault == "404":  # as Ray's proxy answers before the app is deployed
                    return self._reply(404, "Path '/v1/infer' not found.")
                try:
                    pending = front.service.prepare(
                        {k.lower(): v for k, v in self.headers.items()}, body)
                    status, reply = 200, front.service.run_batch([pending])[0]
                except Refused as exc:
                    status, reply = exc.status, refusal_body(exc)
                if fault == "drop":
                    self.close_connection = True
                    return
                self._reply(status, reply)

            def _reply(self, status, reply):
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def arrived(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Called as each request arrives, before it is answered (here: nothing)."""

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.service.close()
