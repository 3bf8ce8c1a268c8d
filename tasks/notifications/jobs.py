"""The `notifications.deliver` handler: parse, deliver, map failures to retry or dead."""

from __future__ import annotations

import os
import uuid
from typing import Any

from sqlalchemy import insert

from config import Settings
from store.db import transaction
from store.jobs import ClaimedJob
from tasks.context import JobContext
from tasks.notifications.channels.email import SmtpSender
from tasks.notifications.channels.sms import sms_provider
from tasks.notifications.channels.webhook import PooledWebhookPoster
from tasks.notifications.delivery import DELIVERED, Outgoing, RecordAttempt, deliver, load_outgoing
from tasks.notifications.gateways import Gateways
from tasks.notifications.models import NotificationAttempt
from tasks.notifications.schemas import DELIVER, DeliverPayload
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import guarded_pool, parse_networks
from tasks.registry import handles

_gateways: dict[int, Gateways] = {}
OUTGOING = "notifications.outgoing"  # this batch's notifications, in JobContext.memo


def gateways_for(settings: Settings) -> Gateways:
    """One set of gateways per process (a forked pool child builds its own)."""
    found = _gateways.get(os.getpid())
    if found is None:
        cfg = settings.section(NotificationSettings)
        webhook = PooledWebhookPoster(
            guarded_pool(allowed=parse_networks(cfg.webhook_allowed_networks)),
            connect_timeout=cfg.webhook_connect_timeout,
            total_timeout=cfg.webhook_total_timeout,
        )
        found = Gateways(email=SmtpSender(cfg.smtp), webhook=webhook, sms=sms_provider(cfg))
        _gateways[os.getpid()] = found
    return found


def _recorder(settings: Settings) -> RecordAttempt:
    def record(values: dict[str, Any]) -> None:
        # Its own transaction on a pooled connection (pinged if it sat idle): the job's writes
        # are dropped on failure, the delivery log must not be, and the batch's connection
        # may have gone stale during the send.
        with transaction(settings) as session:
            session.execute(insert(NotificationAttempt).values(**values))

    return record


def _notification_id(job: ClaimedJob) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(job.payload.get("notification_id")))
    except ValueError:  # its own handler reports the bad payload
        return None


def _outgoing(ctx: JobContext, wanted: uuid.UUID) -> Outgoing | None:
    """The notification to send. The batch's first job loads every job's in one query."""
    rows = ctx.memo.get(OUTGOING)
    if rows is None or wanted not in rows:
        ids = {wanted} | {i for j in ctx.batch if (i := _notification_id(j)) is not None}
        rows = ctx.memo[OUTGOING] = load_outgoing(ctx.autocommit, ids)
    return rows.get(wanted)


@handles(DELIVER.name)
def deliver_notification(ctx: JobContext, payload: DeliverPayload) -> dict[str, Any]:
    """Deliver one notification."""
    return deliver(
        _outgoing(ctx, payload.notification_id),
        payload.notification_id,
        job=ctx.job,
        settings=ctx.settings,
        gateways=gateways_for(ctx.settings),
        record_failure=_recorder(ctx.settings),
        record_delivered=lambda params: ctx.on_success(DELIVERED, params),
    )
