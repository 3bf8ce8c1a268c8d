"""toy domain: the toy_notes table, on a branch of its own

Revision ID: t001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "t001"
down_revision = None
branch_labels = ("toy",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "toy_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("toy_notes")
