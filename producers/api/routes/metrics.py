"""`GET /metrics`: Prometheus text format, for keys holding the `metrics:read` scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST

from store.api_keys import Principal
from store.metrics import LedgerSnapshot, process_metrics
from store.stats import known_queues, queue_report, relay_lag, state_counts
from tasks.registry import domains
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep

router = APIRouter(tags=["operations"])
MetricsReader = Annotated[Principal, Depends(require_scope("metrics:read"))]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
def metrics(session: SessionDep, settings: SettingsDep, _: MetricsReader) -> Response:
    """Counters of this host's processes, then the ledger's, Redis's and the domains' gauges
    read now."""
    registry = domains(settings)
    queues = known_queues(settings, declared=registry.queues)
    snapshot = LedgerSnapshot(
        states=state_counts(session),
        queues=queue_report(session, settings, queues=queues),
        relay=relay_lag(session),
        domains=registry.gauges(session),
    )
    return Response(process_metrics() + snapshot.render(), media_type=CONTENT_TYPE_LATEST)
