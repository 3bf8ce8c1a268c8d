"""iot: alert `for` durations, offline alerts, maintenance, ingest counts, retention indexes

Revision ID: iot_0004
Revises: iot_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "iot_0004"
down_revision = "iot_0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE iot_devices ADD COLUMN maintenance boolean NOT NULL DEFAULT false;
ALTER TABLE iot_alert_rules
  ADD COLUMN kind varchar(9) NOT NULL DEFAULT 'threshold',
  ADD COLUMN for_seconds double precision,
  ALTER COLUMN metric DROP NOT NULL,
  ALTER COLUMN set_at DROP NOT NULL,
  ALTER COLUMN clear_at DROP NOT NULL,
  ADD CONSTRAINT ck_iot_alert_rules_kind CHECK (kind IN ('threshold', 'offline')),
  ADD CONSTRAINT ck_iot_alert_rules_shape CHECK (
    (kind = 'threshold' AND metric IS NOT NULL AND set_at IS NOT NULL AND clear_at IS NOT NULL)
    OR (kind = 'offline' AND metric IS NULL AND set_at IS NULL AND clear_at IS NULL
        AND for_seconds IS NULL AND consecutive = 1)),
  ADD CONSTRAINT ck_iot_alert_rules_for CHECK (
    for_seconds IS NULL OR (for_seconds > 0 AND consecutive = 1));
ALTER TABLE iot_alert_states ADD COLUMN breach_since timestamptz;
CREATE INDEX ix_iot_alert_states_firing ON iot_alert_states (rule_id) WHERE firing;
ALTER TABLE iot_alert_events ALTER COLUMN value DROP NOT NULL;
ALTER TABLE iot_rollup_dirty ADD COLUMN touched_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX ix_iot_rollups_age ON iot_rollups (tier, bucket);
CREATE INDEX ix_iot_batches_done ON iot_batches (received_at) WHERE status <> 'received';
CREATE INDEX ix_iot_batches_waiting ON iot_batches (received_at) WHERE status = 'received';
CREATE TABLE iot_ingest_counts (
  profile_id varchar(100) NOT NULL REFERENCES iot_profiles (id),
  shard smallint NOT NULL,
  accepted bigint NOT NULL DEFAULT 0,
  duplicate bigint NOT NULL DEFAULT 0,
  conflicting bigint NOT NULL DEFAULT 0,
  late bigint NOT NULL DEFAULT 0,
  future bigint NOT NULL DEFAULT 0,
  refused bigint NOT NULL DEFAULT 0,
  CONSTRAINT pk_iot_ingest_counts PRIMARY KEY (profile_id, shard)
);
"""

DOWNGRADE = """
DROP TABLE iot_ingest_counts;
DROP INDEX ix_iot_batches_waiting, ix_iot_batches_done, ix_iot_rollups_age;
ALTER TABLE iot_rollup_dirty DROP COLUMN touched_at;
DELETE FROM iot_alert_events e USING iot_alert_rules r WHERE r.id = e.rule_id AND r.kind = 'offline';
DELETE FROM iot_alert_states s USING iot_alert_rules r WHERE r.id = s.rule_id AND r.kind = 'offline';
DELETE FROM iot_alert_rules WHERE kind = 'offline';
ALTER TABLE iot_alert_events ALTER COLUMN value SET NOT NULL;
DROP INDEX ix_iot_alert_states_firing;
ALTER TABLE iot_alert_states DROP COLUMN breach_since;
ALTER TABLE iot_alert_rules
  DROP CONSTRAINT ck_iot_alert_rules_for, DROP CONSTRAINT ck_iot_alert_rules_shape,
  DROP CONSTRAINT ck_iot_alert_rules_kind, DROP COLUMN for_seconds, DROP COLUMN kind,
  ALTER COLUMN metric SET NOT NULL, ALTER COLUMN set_at SET NOT NULL,
  ALTER COLUMN clear_at SET NOT NULL;
ALTER TABLE iot_devices DROP COLUMN maintenance;
"""


def upgrade() -> None:
    """Add the columns, the counts table and the indexes retention and metrics read."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Remove them (offline rules, which the old shape cannot hold, go with them)."""
    op.execute(DOWNGRADE)
