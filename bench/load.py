"""A lean HTTP/1.1 keep-alive load generator: N connections, each sending requests back to back.

Written on raw asyncio streams so that the client spends as little of the machine's CPU as
possible (httpx costs several times more per request and would cap both contenders alike).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    """How many responses of each status came back, and how long it took."""

    statuses: Counter[int]
    seconds: float

    def rate(self, status: int) -> float:
        """Responses of `status` per second."""
        return self.statuses[status] / self.seconds if self.seconds else 0.0


def post_request(host: str, port: int, path: str, body: Any, headers: dict[str, str]) -> bytes:
    """The bytes of one keep-alive JSON POST."""
    data = json.dumps(body, separators=(",", ":")).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, request: bytes, budget: list[int], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0:
            budget[0] -= 1
            writer.write(request)
            statuses[await _read_response(reader)] += 1
    finally:
        writer.close()


async def _run(host: str, port: int, request: bytes, total: int, concurrency: int) -> LoadResult:
    statuses: Counter[int] = Counter()
    budget = [total]
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, budget, statuses) for _ in range(concurrency))
    )
    return LoadResult(statuses=statuses, seconds=time.perf_counter() - start)


def run_load(host: str, port: int, request: bytes, *, total: int, concurrency: int) -> LoadResult:
    """Send `total` copies of `request` over `concurrency` keep-alive connections."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_run(host, port, request, total, concurrency))  # type: ignore[no-any-return]
