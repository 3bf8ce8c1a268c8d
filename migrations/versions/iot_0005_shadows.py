"""iot: device shadows, reported and desired state with one version

Revision ID: iot_0005
Revises: iot_0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "iot_0005"
down_revision = "iot_0004"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE iot_shadows (
  device_id varchar(100) PRIMARY KEY REFERENCES iot_devices (id),
  reported jsonb NOT NULL DEFAULT '{}',
  desired jsonb NOT NULL DEFAULT '{}',
  version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
  reported_at timestamptz,
  desired_at timestamptz
);
"""


def upgrade() -> None:
    """Create the shadow table."""
    op.execute(TABLES)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE iot_shadows")
