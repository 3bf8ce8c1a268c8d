"""A webhook receiver process that records every request: the far side of tests and benchmarks.

Run it as `python -m devstack.receiver PORT LOG`. Paths:
`/ok` answers 200; `/fail/N/...` answers 500 to its first N requests; `/hang/S/...` sleeps S
seconds before answering its first request; `/delay/MS/...` waits MS milliseconds before every
answer (a far side with some latency); `/redirect?to=URL` answers 302 to URL. Every request
is appended to LOG as one JSON line *before* it is answered.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from config import Settings
from devstack.processes import Process, free_port, settings_env, wait_until


class _Handler(BaseHTTPRequestHandler):
    log_path: Path
    seen: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.seen[self.path] += 1
            count = self.seen[self.path]
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": base64.b64encode(body).decode(),
                "at": time.time(),
            }
            with self.log_path.open("a") as out:
                out.write(json.dumps(record) + "\n")
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        status, headers = 200, {}
        if segments[0] == "fail" and count <= int(segments[1]):
            status = 500
        elif segments[0] == "hang" and count == 1:
            time.sleep(float(segments[1]))
        elif segments[0] == "delay":
            time.sleep(float(segments[1]) / 1_000)
        elif segments[0] == "redirect":
            status, headers = 302, {"Location": parse_qs(parts.query)["to"][0]}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def serve(port: int, log_path: Path) -> None:
    """Run the receiver until killed."""
    _Handler.log_path = log_path
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


@dataclass
class Receiver:
    """A receiver process and what it has recorded."""

    process: Process
    base: str
    log_path: Path

    def requests(self, prefix: str = "") -> list[dict[str, Any]]:
        """Recorded requests whose path starts with `prefix`, bodies decoded to bytes."""
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            rec = json.loads(line)
            if rec["path"].startswith(prefix):
                rec["body"] = base64.b64decode(rec["body"])
                out.append(rec)
        return out


def start_receiver(logs_dir: Path) -> Receiver:
    """Start a receiver process on a free port and wait until it answers."""
    port = free_port()
    log_path = logs_dir / f"receiver-{port}.jsonl"
    proc = Process(
        [sys.executable, "-m", "devstack.receiver", str(port), str(log_path)],
        env=settings_env(Settings()),
        log_path=logs_dir / f"receiver-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.post(f"{base}/ping", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=15, what="the webhook receiver")
    return Receiver(proc, base, log_path)


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
