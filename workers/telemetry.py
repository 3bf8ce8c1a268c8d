"""Worker metrics served over HTTP, for workers on hosts without an API to scrape."""

from __future__ import annotations

from logs import get_logger

log = get_logger("switchyard.telemetry")


def serve_worker_metrics(port: int, *, host: str = "0.0.0.0") -> None:
    """Serve this host's multiprocess metrics on `port` (for workers on hosts without an API)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
    log.info("worker_metrics_serving", port=port)
