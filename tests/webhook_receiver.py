"""A real webhook receiver on a free port, for the alert tests: answers given codes in turn, keeps every body."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Answers `codes` in turn (then 200), each after `delay_s`, and keeps every body."""

    def __init__(self, codes: tuple[int, ...] = (), port: int = 0, delay_s: float = 0.0) -> None:
        self.codes = list(codes)
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay_s)  # a slow receiver: whoever sends must not wait for it on an event loop
                code = receiver.codes.pop(0) if receiver.codes else 200
                receiver.bodies.append({"code": code, **body})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
