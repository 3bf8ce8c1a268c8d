"""iot: roll-ups (1 min, 1 h, 1 d) and the log of the minute buckets stored batches touched

Revision ID: iot_0002
Revises: iot_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "iot_0002"
down_revision = "iot_0001"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE iot_rollups (
  tier varchar(2) NOT NULL CHECK (tier IN ('1m', '1h', '1d')),
  device_id varchar(100) NOT NULL,
  metric varchar(200) NOT NULL,
  bucket timestamptz NOT NULL,
  count bigint NOT NULL CHECK (count > 0),
  min double precision NOT NULL,
  max double precision NOT NULL,
  sum numeric NOT NULL,
  last_ts timestamptz NOT NULL,
  last double precision NOT NULL,
  CONSTRAINT pk_iot_rollups PRIMARY KEY (tier, device_id, metric, bucket)
);
CREATE TABLE iot_rollup_dirty (
  device_id varchar(100) NOT NULL,
  metric varchar(200) NOT NULL,
  bucket timestamptz NOT NULL,
  touched integer NOT NULL DEFAULT 1,
  CONSTRAINT pk_iot_rollup_dirty PRIMARY KEY (device_id, metric, bucket)
);
"""


def upgrade() -> None:
    """Create the roll-up tables."""
    op.execute(TABLES)


def downgrade() -> None:
    """Drop them."""
    op.execute("DROP TABLE iot_rollup_dirty, iot_rollups")
