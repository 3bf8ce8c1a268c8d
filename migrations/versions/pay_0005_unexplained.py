"""payments: unexplained webhooks and dispute mismatches as reconciliation exceptions

Revision ID: pay_0005
Revises: pay_0004
Create Date: 2026-12-02

An exception now comes from a reconciliation run or from a provider event that no operation
of ours explains (exactly one of `run_id`, `webhook_event_id`); two kinds join the list:
`unexplained` (such an event) and `dispute_mismatch` (the report's dispute adjustments differ
from the disputes recorded). Such an event is marked `unexplained`, not `ignored`.
"""

from __future__ import annotations

from alembic import op

revision = "pay_0005"
down_revision = "pay_0004"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "'missing', 'unexpected', 'over', 'under', 'currency_mismatch', 'fee_mismatch', 'duplicate'"
)
KINDS = f"{OLD_KINDS}, 'dispute_mismatch', 'unexplained'"
OLD_STATUSES = "'received', 'applied', 'unchanged', 'stale', 'ignored'"
STATUSES = f"{OLD_STATUSES}, 'unexplained'"


def upgrade() -> None:
    """Widen the kinds and statuses; an exception names its run or its event."""
    op.execute(f"""
ALTER TABLE pay_recon_exceptions DROP CONSTRAINT pay_recon_exceptions_kind_check,
  ADD CONSTRAINT pay_recon_exceptions_kind_check CHECK (kind IN ({KINDS})),
  ALTER COLUMN run_id DROP NOT NULL,
  ADD COLUMN webhook_event_id varchar(255) REFERENCES pay_webhook_events (id),
  ADD CONSTRAINT ck_pay_recon_exceptions_one_source
    CHECK ((run_id IS NULL) <> (webhook_event_id IS NULL));
CREATE INDEX ix_pay_recon_exceptions_webhook_event_id
  ON pay_recon_exceptions (webhook_event_id) WHERE webhook_event_id IS NOT NULL;
ALTER TABLE pay_webhook_events DROP CONSTRAINT pay_webhook_events_status_check,
  ADD CONSTRAINT pay_webhook_events_status_check CHECK (status IN ({STATUSES}));
""")


def downgrade() -> None:
    """Back to run-only exceptions of the first seven kinds (the newer ones are dropped)."""
    op.execute(f"""
DELETE FROM pay_recon_exceptions
  WHERE webhook_event_id IS NOT NULL OR kind IN ('dispute_mismatch', 'unexplained');
UPDATE pay_webhook_events SET status = 'ignored' WHERE status = 'unexplained';
ALTER TABLE pay_webhook_events DROP CONSTRAINT pay_webhook_events_status_check,
  ADD CONSTRAINT pay_webhook_events_status_check CHECK (status IN ({OLD_STATUSES}));
ALTER TABLE pay_recon_exceptions DROP CONSTRAINT ck_pay_recon_exceptions_one_source,
  DROP COLUMN webhook_event_id,
  ALTER COLUMN run_id SET NOT NULL,
  DROP CONSTRAINT pay_recon_exceptions_kind_check,
  ADD CONSTRAINT pay_recon_exceptions_kind_check CHECK (kind IN ({OLD_KINDS}));
""")
