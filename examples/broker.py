"""A tiny broker over HTTP that executes orders at most once per ``Idempotency-Key``.

    POST /orders   {"symbol": "ACME", "side": "buy", "qty": 10, "price": 101.5}
                   header Idempotency-Key: <key> (required)
                   -> 201 {"order_id": ..., "status": "filled", ...}  first time for a key
                   -> 200 the same body, with header Idempotent-Replayed: true, afterwards
    GET  /orders   -> {"orders": [...]}    every executed order, oldest first
    GET  /requests -> {"requests": [...]}  every POST /orders seen: key and whether replayed

Run it on its own with ``python -m examples.broker`` (prints its URL), or in code:

    with Broker() as broker:        # 127.0.0.1 on a free port, served by a background thread
        print(broker.url, broker.orders())
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class BrokerBook:
    """The broker's memory: executed orders and the response stored per idempotency key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.responses: dict[str, dict[str, Any]] = {}

    def place(self, key: str, order: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Execute ``order`` unless ``key`` was seen; returns (replayed, response body)."""
        with self.lock:
            stored = self.responses.get(key)
            self.requests.append({"idempotency_key": key, "replayed": stored is not None})
            if stored is not None:
                return True, stored
            qty = float(order["qty"])
            price = float(order["price"])
            fill = {
                "order_id": f"ord-{len(self.orders) + 1}",
                "status": "filled",
                "symbol": str(order["symbol"]),
                "side": str(order["side"]),
                "qty": qty,
                "price": price,
                "notional": round(qty * price, 2),
                "idempotency_key": key,
            }
            self.orders.append(fill)
            self.responses[key] = fill
            return False, fill


class _Handler(BaseHTTPRequestHandler):
    server: _BrokerServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return None

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        book = self.server.book
        with book.lock:
            if self.path == "/orders":
                self._send(200, {"orders": list(book.orders)})
            elif self.path == "/requests":
                self._send(200, {"requests": list(book.requests)})
            else:
                self._send(404, {"error": f"no such path {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/orders":
            self._send(404, {"error": f"no such path {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._send(400, {"error": "the Idempotency-Key header is required"})
            return
        try:
            order = json.loads(self.rfile.read(length) or b"{}")
            replayed, body = self.server.book.place(key, order)
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": f"bad order: {exc!r}"})
            return
        if replayed:
            self._send(200, body, {"Idempotent-Replayed": "true"})
        else:
            self._send(201, body)


class _BrokerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], book: BrokerBook) -> None:
        super().__init__(address, _Handler)
        self.book = book


class Broker:
    """The broker served on ``host:port`` (port 0: a free one) by a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.book = BrokerBook()
        self._server = _BrokerServer((host, port), self.book)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the standalone broker)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start(self) -> Broker:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # a quick shutdown()
            name="example-broker",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def orders(self) -> list[dict[str, Any]]:
        with self.book.lock:
            return list(self.book.orders)

    def requests(self) -> list[dict[str, Any]]:
        with self.book.lock:
            return list(self.book.requests)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.broker")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    broker = Broker(port=args.port)
    print(f"broker listening on {broker.url} (Ctrl-C to stop)", flush=True)
    try:
        broker.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
