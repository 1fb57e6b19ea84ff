"""The loopback HTTP port ([http]): GET /metrics (Prometheus text) and GET /healthz.

/healthz answers 200 while every running part's last report was a success and 503 when
one failed, with each part's state as JSON. A stdlib server in a thread of its own: a
scrape never waits for the event loop.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from mailgate.health import Health

log = logging.getLogger(__name__)


def health_document(health: Health) -> dict:
    states = health.snapshot()
    return {
        "status": "ok" if all(s.ok for s in states) else "failing",
        "components": [
            {
                "name": s.name,
                "ok": s.ok,
                "since": s.since.isoformat(),
                "last_success": s.last_success.isoformat() if s.last_success else None,
                "detail": s.detail,
            }
            for s in states
        ],
    }


class StatusServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry, health: Health):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer._answer(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("http: " + format, *args)

        self.registry, self.health = registry, health
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="http-status", daemon=True
        )

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body, status, kind = generate_latest(self.registry), 200, CONTENT_TYPE_LATEST
            except Exception as e:  # noqa: BLE001 - a broken scrape is an answer, not a crash
                log.exception("metrics: scrape failed")
                body, status, kind = f"scrape failed: {e}\n".encode(), 500, "text/plain"
        elif path == "/healthz":
            doc = health_document(self.health)
            body = (json.dumps(doc, indent=1) + "\n").encode()
            status = 200 if doc["status"] == "ok" else 503
            kind = "application/json"
        else:
            body, status, kind = b"not found: try /metrics or /healthz\n", 404, "text/plain"
        req.send_response(status)
        req.send_header("Content-Type", kind)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
