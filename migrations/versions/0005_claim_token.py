"""claim tokens, and the open attempt on the job row: each claim names itself and its finish
must name it too; an attempt's row is written once, when it ends

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Claims commit asynchronously (`synchronous_commit = off`): after a PostgreSQL crash one may be
forgotten, and the job's next claim then reuses its attempt number. The finish's guard was
`attempts = <this attempt>`, which a finish from the forgotten claim's worker would pass; it is
now `claim_token = <this claim's token>`, a fresh UUID per claim. Not indexed: the guard finds
the row by its primary key, and an unindexed column keeps the claim's update free to be HOT.

The attempt a job is running is kept on the job row (`claimed_by`, `claimed_at`, written by the
claim's own update) instead of a `job_attempts` row inserted by the claim and updated by the
finish: the finish (or the reaper) inserts the attempt's row once, complete. Upgrading moves each
open attempt row onto its running job; downgrading moves it back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("claim_token", sa.UUID(), nullable=True))
    op.add_column("jobs", sa.Column("claimed_by", sa.String(255), nullable=True))
    op.add_column("jobs", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE jobs j SET claimed_by = a.worker, claimed_at = a.started_at"
        " FROM job_attempts a WHERE a.job_id = j.id AND a.number = j.attempts"
        " AND a.outcome = 'running' AND j.state = 'running'"
    )
    op.execute("DELETE FROM job_attempts WHERE outcome = 'running'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO job_attempts (job_id, number, worker, started_at, outcome)"
        " SELECT id, attempts, claimed_by, claimed_at, 'running' FROM jobs"
        " WHERE state = 'running' AND claimed_by IS NOT NULL"
    )
    op.drop_column("jobs", "claimed_at")
    op.drop_column("jobs", "claimed_by")
    op.drop_column("jobs", "claim_token")
