"""Notifications: email, signed webhooks and SMS, with an auditable delivery log."""

from __future__ import annotations

from tasks.notifications import models
from tasks.notifications.callbacks import callback_columns
from tasks.notifications.schemas import DELIVER, QUEUE
from tasks.notifications.settings import NotificationSettings
from tasks.registry import Domain

DOMAIN = Domain(
    name="notifications",
    job_types=(DELIVER,),
    queues=(QUEUE,),
    scopes=("notifications:write", "notifications:read"),
    handlers="tasks.notifications.jobs",
    routes=("tasks.notifications.routes", "tasks.notifications.template_routes"),
    settings=NotificationSettings,
    metadata=models.Notification.metadata,
    callback_columns=callback_columns,
    tables=(
        "notification_attempts",
        "notifications",
        "webhook_endpoints",
        "notification_templates",
    ),
)
