"""Which provider the configuration names."""

from __future__ import annotations

from functools import cache

from config import Settings
from tasks.payments.gateway import Gateway, TokenGateway
from tasks.payments.settings import PaymentSettings


def gateway_for(settings: Settings) -> Gateway:
    """The configured gateway (one per process and kind)."""
    return _gateway(settings.section(PaymentSettings).gateway)


@cache
def _gateway(kind: str) -> Gateway:
    return TokenGateway()
