"""payments: the API's idempotency keys

Revision ID: pay_0006
Revises: pay_0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "pay_0006"
down_revision = "pay_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One row per (producer, key); the answer is stored with it, in the request's transaction."""
    op.execute("""
CREATE TABLE pay_idempotency_keys (
  producer varchar(200) NOT NULL,
  key varchar(255) NOT NULL,
  request_hash varchar(64) NOT NULL,
  status integer,
  body jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (producer, key),
  CHECK ((status IS NULL) = (body IS NULL))
);
CREATE INDEX ix_pay_idempotency_keys_created_at ON pay_idempotency_keys (created_at);
""")


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE pay_idempotency_keys;")
