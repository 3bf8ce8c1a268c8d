"""notifications: templates, webhook endpoints, notifications, attempts, job callbacks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UUID7 = """
CREATE OR REPLACE FUNCTION switchyard_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid()) placing
        substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
"""

# The completion callback is enqueued by the database itself, in the very transaction that
# records the terminal state, whichever code path (worker, API cancel, reaper) moved the job.
CALLBACK = """
CREATE OR REPLACE FUNCTION switchyard_enqueue_job_callback() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  notification_id uuid := switchyard_uuid7();
  delivery_id uuid := switchyard_uuid7();
  body jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM notifications
             WHERE source_job_id = NEW.id AND source_attempt = NEW.attempts) THEN
    RETURN NULL;
  END IF;
  body := jsonb_build_object(
    'type', 'job.' || NEW.state,
    'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'data', jsonb_build_object(
      'job_id', NEW.id, 'job_type', NEW.type, 'state', NEW.state,
      'attempts', NEW.attempts, 'result', NEW.result,
      'error', CASE WHEN jsonb_typeof(NEW.error) = 'object' THEN NEW.error - 'traceback' END,
      'finished_at', NEW.finished_at));
  INSERT INTO jobs (id, type, queue, state, payload, priority, attempts, max_attempts,
                    lost_count, run_at, producer, created_at, updated_at)
  VALUES (delivery_id, 'notifications.deliver', 'notifications', 'accepted',
          jsonb_build_object('notification_id', notification_id), NEW.priority, 0, 100,
          0, now(), NEW.producer, now(), now());
  INSERT INTO notifications (id, producer, kind, channel, recipient, body_text, data, job_id,
                             callback_secret, source_job_id, source_attempt, send_at, created_at)
  VALUES (notification_id, NEW.producer, 'callback', 'webhook', NEW.callback_url, body::text,
          body, delivery_id, NEW.callback_secret, NEW.id, NEW.attempts, now(), now());
  INSERT INTO outbox (job_id, job_type, queue, priority, available_at, created_at)
  VALUES (delivery_id, 'notifications.deliver', 'notifications', NEW.priority, now(), now());
  PERFORM pg_notify('switchyard_outbox', '');
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_completion_callback
AFTER UPDATE OF state ON jobs FOR EACH ROW
WHEN (NEW.callback_url IS NOT NULL
      AND NEW.state IN ('succeeded', 'dead', 'cancelled')
      AND OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION switchyard_enqueue_job_callback();
"""


def _created(name: str = "created_at") -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column("jobs", sa.Column("callback_url", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("callback_secret", sa.Text(), nullable=True))
    op.create_table(
        "notification_templates",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("producer", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        _created(),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_templates")),
        sa.UniqueConstraint(
            "producer", "name", "version", name=op.f("uq_notification_templates_producer")
        ),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("producer", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secrets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("producer", "url", name=op.f("uq_webhook_endpoints_producer")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("producer", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("template_name", sa.String(length=100), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("dedup_key", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("endpoint_id", sa.UUID(), nullable=True),
        sa.Column("callback_secret", sa.Text(), nullable=True),
        sa.Column("source_job_id", sa.UUID(), nullable=True),
        sa.Column("source_attempt", sa.SmallInteger(), nullable=True),
        _created("send_at"),
        _created(),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_notifications_endpoint_id_webhook_endpoints"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_producer_id", "notifications", ["producer", "id"])
    op.create_index(op.f("ix_notifications_job_id"), "notifications", ["job_id"])
    op.create_index(
        "ix_notifications_channel_recipient_send_at",
        "notifications",
        ["channel", "recipient", "send_at"],
    )
    op.create_index(
        "ix_notifications_dedup",
        "notifications",
        ["producer", "channel", "recipient", "dedup_key", "created_at"],
        postgresql_where=sa.text("dedup_key IS NOT NULL"),
    )
    op.create_index(
        "uq_notifications_source_job_attempt",
        "notifications",
        ["source_job_id", "source_attempt"],
        unique=True,
        postgresql_where=sa.text("source_job_id IS NOT NULL"),
    )
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.UUID(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        _created("at"),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_attempts_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    op.create_index(
        op.f("ix_notification_attempts_notification_id"),
        "notification_attempts",
        ["notification_id"],
    )
    op.execute(UUID7)
    op.execute(CALLBACK)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS jobs_completion_callback ON jobs")
    op.execute("DROP FUNCTION IF EXISTS switchyard_enqueue_job_callback()")
    op.execute("DROP FUNCTION IF EXISTS switchyard_uuid7()")
    op.drop_table("notification_attempts")
    op.drop_table("notifications")
    op.drop_table("webhook_endpoints")
    op.drop_table("notification_templates")
    op.drop_column("jobs", "callback_secret")
    op.drop_column("jobs", "callback_url")
