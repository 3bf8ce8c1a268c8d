"""completion callbacks: the trigger rendered from one SQL file with the code's names

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

0002 and 0003 wrote the callback job's type, queue, attempt budget and NOTIFY channel into
the function by hand. From here the trigger is `tasks/notifications/sql/completion_callback.sql`,
rendered with the values the code uses (the `notifications.deliver` JobSpec, the notifications'
attempt bound, `store.outbox.NOTIFY_CHANNEL`, the job states); a later change to any of them
comes with a migration that installs it again.
"""

from __future__ import annotations

from alembic import context, op

from tasks.notifications.completion_trigger import render

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(render())


def downgrade() -> None:
    # 0003's function as 0003 spelled it out. The trigger stays as upgrade re-created it:
    # 0002's, for as long as the job states are the ones 0002 wrote in.
    op.execute(context.script.get_revision("0003").module.CALLBACK_BY_STATE)
