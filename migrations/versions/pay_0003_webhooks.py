"""payments: provider webhook events (recorded once by id), disputes, receipt addresses

Revision ID: pay_0003
Revises: pay_0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "pay_0003"
down_revision = "pay_0002"
branch_labels = None
depends_on = None

TABLES = """
ALTER TABLE pay_intents ADD COLUMN receipt_email varchar(320);
CREATE TABLE pay_webhook_events (
  id varchar(255) PRIMARY KEY,
  provider varchar(16) NOT NULL,
  type varchar(100) NOT NULL,
  object_id varchar(255),
  payload jsonb NOT NULL,
  status varchar(16) NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'applied',
    'unchanged', 'stale', 'ignored')),
  intent_id varchar(40) REFERENCES pay_intents (id),
  outcome varchar(500),
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz
);
CREATE INDEX ix_pay_webhook_events_intent_id ON pay_webhook_events (intent_id);
CREATE TABLE pay_disputes (
  id varchar(255) PRIMARY KEY,
  intent_id varchar(40) NOT NULL REFERENCES pay_intents (id),
  amount bigint NOT NULL CHECK (amount > 0),
  fee bigint NOT NULL CHECK (fee >= 0),
  status varchar(8) NOT NULL CHECK (status IN ('open', 'won', 'lost')),
  created_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz
);
CREATE INDEX ix_pay_disputes_intent_id ON pay_disputes (intent_id);
"""


def upgrade() -> None:
    op.execute(TABLES)


def downgrade() -> None:
    op.execute(
        "DROP TABLE pay_disputes, pay_webhook_events;"
        " ALTER TABLE pay_intents DROP COLUMN receipt_email"
    )
