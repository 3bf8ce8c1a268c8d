"""Readings per profile by outcome, added in each batch's store transaction: the counters
`/metrics` shows, exact under retries (a batch stored twice is counted once, with its commit)."""

from __future__ import annotations

import uuid
from dataclasses import astuple, dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# Concurrent batches of one profile add to different rows, so none waits on another's commit.
SHARDS = 16
OUTCOMES = ("accepted", "duplicate", "conflicting", "late", "future", "refused")
_COLUMNS = ", ".join(OUTCOMES)
ADD = text(f"""
INSERT INTO iot_ingest_counts (profile_id, shard, {_COLUMNS})
VALUES (:profile, :shard, {", ".join(f":{o}" for o in OUTCOMES)})
ON CONFLICT (profile_id, shard) DO UPDATE SET
  {", ".join(f"{o} = iot_ingest_counts.{o} + excluded.{o}" for o in OUTCOMES)}
""")
TOTALS = text(f"""
SELECT p.id AS profile, {", ".join(f"coalesce(sum(c.{o}), 0) AS {o}" for o in OUTCOMES)}
FROM iot_profiles p LEFT JOIN iot_ingest_counts c ON c.profile_id = p.id
GROUP BY p.id ORDER BY p.id
""")


@dataclass(frozen=True)
class Outcomes:
    """One batch's readings by outcome. `late`: stored, older than their metric's latest value;
    `future`: beyond the skew, clamped or refused; `refused` includes the refused future."""

    accepted: int = 0
    duplicate: int = 0
    conflicting: int = 0
    late: int = 0
    future: int = 0
    refused: int = 0


def add(session: Session, *, profile: str, batch_id: uuid.UUID, outcomes: Outcomes) -> None:
    """Add a batch's outcomes to its profile's counts (the store transaction)."""
    if not any(astuple(outcomes)):
        return
    values = dict(zip(OUTCOMES, astuple(outcomes), strict=True))
    session.execute(ADD, {"profile": profile, "shard": batch_id.int % SHARDS, **values})


def totals(session: Session) -> dict[str, dict[str, int]]:
    """Every profile's counts by outcome (zeros for a profile with none yet)."""
    return {r.profile: {o: int(getattr(r, o)) for o in OUTCOMES} for r in session.execute(TOTALS)}
