"""A local HTTP server on 127.0.0.1 that speaks JSON like a provider's API: the first POST is rate limited
(429 with a 1 ms retry-after), later ones get `answer(body)`. Every request is recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def fake_api(answer: Callable[[dict], dict]) -> Iterator[tuple[str, list[dict]]]:
    """Yields (base URL, requests seen: path, headers, JSON body)."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            if len(seen) == 1:
                self._reply(429, {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
                            {"retry-after-ms": "1", "retry-after": "0"})
            else:
                self._reply(200, answer(body))

        def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        thread.join()
