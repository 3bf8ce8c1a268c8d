"""claim tokens: each claim of a job names itself, and its finish must name it too

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Claims commit asynchronously (`synchronous_commit = off`): after a PostgreSQL crash one may be
forgotten, and the job's next claim then reuses its attempt number. The finish's guard was
`attempts = <this attempt>`, which a finish from the forgotten claim's worker would pass; it is
now `claim_token = <this claim's token>`, a fresh UUID per claim. Not indexed: the guard finds
the row by its primary key, and an unindexed column keeps the claim's update free to be HOT.
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


def downgrade() -> None:
    op.drop_column("jobs", "claim_token")
