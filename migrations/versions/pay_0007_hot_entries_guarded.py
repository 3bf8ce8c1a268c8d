"""payments: hot entries are never changed, and deleted only into their balance

Revision ID: pay_0007
Revises: pay_0006
Create Date: 2026-12-03

A `DELETE FROM pay_hot_entries` alone used to commit (the deferred balance check ran only
for inserted entries) and an `UPDATE` of an entry was not seen at all, so money could vanish
or appear outside a roll-up. Reloads tasks/payments/sql/ledger.sql: the check runs for
deleted entries too, and entries refuse updates, like transfers.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "pay_0007"
down_revision = "pay_0006"
branch_labels = None
depends_on = None

LEDGER_SQL = Path(__file__).resolve().parents[2] / "tasks" / "payments" / "sql" / "ledger.sql"


def upgrade() -> None:
    """Reload the ledger's functions and triggers (every statement there is idempotent)."""
    op.execute(LEDGER_SQL.read_text())


def downgrade() -> None:
    """Back to checking inserted entries only (the functions' new bodies stay: they accept
    everything the old ones did)."""
    op.execute("""
DROP TRIGGER pay_hot_entries_immutable ON pay_hot_entries;
DROP TRIGGER pay_hot_entries_balanced ON pay_hot_entries;
CREATE CONSTRAINT TRIGGER pay_hot_entries_balanced AFTER INSERT ON pay_hot_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pay_check_balanced();
""")
