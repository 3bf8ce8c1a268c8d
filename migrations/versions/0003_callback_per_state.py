"""completion callbacks: one per terminal state reached, replays included

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

A dead job that is replayed and then cancelled before its next claim keeps its attempt number;
keyed on (job, attempt) alone, its `job.cancelled` callback was suppressed as a duplicate of the
`job.dead` one. The key now includes the state reached.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CALLBACK_BY_STATE = """
CREATE OR REPLACE FUNCTION switchyard_enqueue_job_callback() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  notification_id uuid := switchyard_uuid7();
  delivery_id uuid := switchyard_uuid7();
  body jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM notifications
             WHERE source_job_id = NEW.id AND source_attempt = NEW.attempts
               AND source_state = NEW.state) THEN
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
                             callback_secret, source_job_id, source_attempt, source_state,
                             send_at, created_at)
  VALUES (notification_id, NEW.producer, 'callback', 'webhook', NEW.callback_url, body::text,
          body, delivery_id, NEW.callback_secret, NEW.id, NEW.attempts, NEW.state,
          now(), now());
  INSERT INTO outbox (job_id, job_type, queue, priority, available_at, created_at)
  VALUES (delivery_id, 'notifications.deliver', 'notifications', NEW.priority, now(), now());
  PERFORM pg_notify('switchyard_outbox', '');
  RETURN NULL;
END $$;
"""

CALLBACK_BY_ATTEMPT = """
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
"""


def upgrade() -> None:
    op.add_column("notifications", sa.Column("source_state", sa.String(16), nullable=True))
    op.execute(
        "UPDATE notifications SET source_state = substr(data->>'type', 5) "
        "WHERE source_job_id IS NOT NULL"
    )
    op.drop_index("uq_notifications_source_job_attempt", table_name="notifications")
    op.create_index(
        "uq_notifications_source_job_attempt_state",
        "notifications",
        ["source_job_id", "source_attempt", "source_state"],
        unique=True,
        postgresql_where=sa.text("source_job_id IS NOT NULL"),
    )
    op.execute(CALLBACK_BY_STATE)


def downgrade() -> None:
    op.execute(CALLBACK_BY_ATTEMPT)
    op.drop_index("uq_notifications_source_job_attempt_state", table_name="notifications")
    op.create_index(
        "uq_notifications_source_job_attempt",
        "notifications",
        ["source_job_id", "source_attempt"],
        unique=True,
        postgresql_where=sa.text("source_job_id IS NOT NULL"),
    )
    op.drop_column("notifications", "source_state")
