"""payments: reconciliation runs and their exceptions

Revision ID: pay_0004
Revises: pay_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "pay_0004"
down_revision = "pay_0003"
branch_labels = None
depends_on = None

KINDS = "'missing', 'unexpected', 'over', 'under', 'currency_mismatch', 'fee_mismatch', 'duplicate'"
RESOLUTIONS = "'provider_corrected', 'ledger_corrected', 'written_off', 'false_alarm'"


def upgrade() -> None:
    """Create the tables; one open exception per (kind, provider ref)."""
    op.execute(f"""
CREATE TABLE pay_recon_runs (
  id bigserial PRIMARY KEY,
  lines integer NOT NULL,
  intents integer NOT NULL,
  exceptions integer NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE pay_recon_exceptions (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES pay_recon_runs (id),
  kind varchar(32) NOT NULL CHECK (kind IN ({KINDS})),
  provider_ref varchar(200) NOT NULL,
  intent_id varchar(40),
  expected bigint,
  actual bigint,
  detail varchar(500) NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz,
  resolution varchar(32) CHECK (resolution IN ({RESOLUTIONS})),
  resolved_by varchar(200),
  note varchar(2000),
  CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX ix_pay_recon_exceptions_run_id ON pay_recon_exceptions (run_id);
CREATE UNIQUE INDEX uq_pay_recon_exceptions_open ON pay_recon_exceptions (kind, provider_ref)
  WHERE resolved_at IS NULL;
""")


def downgrade() -> None:
    """Drop them."""
    op.execute("DROP TABLE pay_recon_exceptions; DROP TABLE pay_recon_runs;")
