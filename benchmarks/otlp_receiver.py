"""A loopback OTLP/HTTP receiver that reads every request whole and answers 200 (run as its own process).

It prints its port on the first line of stdout, then serves on 127.0.0.1 until it is terminated, its
stdin closes, or ``--max-seconds`` pass. It counts requests and body bytes and prints them on exit.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


class Counter:
    requests = 0
    body_bytes = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the exporter's requests.Session expects.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with Counter.lock:
            Counter.requests += 1
            Counter.body_bytes += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silent: one line per request would cost more than the request."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    # Ends when the parent closes our stdin (or dies), or at the time limit.
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait(args.max_seconds)
    server.shutdown()
    print(f"requests={Counter.requests} body_bytes={Counter.body_bytes}", flush=True)


if __name__ == "__main__":
    main()
