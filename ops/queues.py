"""`switchyard queues`: depth in Redis and the oldest ready job of each queue."""

from __future__ import annotations

from config import Settings
from ops.output import emit_json, table


def show_queues(settings: Settings, *, as_json: bool) -> None:
    """Print each queue's Redis depth, due jobs in the ledger, and the oldest one's age."""
    from store.db import transaction
    from store.stats import known_queues, queue_report, relay_lag
    from tasks.registry import domains

    names = known_queues(settings, declared=domains(settings).queues)
    with transaction(settings) as session:
        report = queue_report(session, settings, queues=names)
        lag = relay_lag(session)
    if as_json:
        emit_json(
            {
                "queues": [vars(q) for q in report],
                "relay": {"backlog": lag.backlog, "oldest_age_seconds": lag.oldest_age_seconds},
            }
        )
        return
    table(
        "queues",
        ["queue", "in redis", "ready (ledger)", "oldest ready (s)"],
        ((q.name, q.depth, q.ready, q.oldest_ready_seconds) for q in report),
    )
    age = "-" if lag.oldest_age_seconds is None else f"{lag.oldest_age_seconds:.1f}s"
    print(f"relay: {lag.backlog} due outbox row(s), oldest {age}")
