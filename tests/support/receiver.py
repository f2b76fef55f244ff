"""A provider's webhook endpoint on loopback: records every POST, can be told to fail the first N."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append({"path": self.path, "body": json.loads(body), "raw": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        self.received.clear()
        self.attempts = 0
        self.fail_next = 0

    def at(self, path: str, count: int = 1, timeout: float = 120.0) -> list[dict[str, Any]]:
        """The POSTs received at `path`, once there are `count`: a test that names its own path is not misled by a
        late delivery of an earlier test's webhook (durable deliveries are retried; the receiver is shared)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in list(self.received) if r["path"] == path]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook(s) at {path}, got {len([r for r in self.received if r['path'] == path])}")

    def wait_for(self, count: int, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Every POST received so far (this session's, whichever backend sent it), once there are `count`. Returns
        as soon as they are in; the bound is for a loaded machine, where durable deliveries with their retries
        took longer than 20 s (14 of 17 drift events after 20 s at load average 49)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"expected {count} webhook(s), got {len(self.received)}"
        return self.received
