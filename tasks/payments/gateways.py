"""Which provider the configuration names."""

from __future__ import annotations

from functools import cache

from config import Settings
from tasks.payments.gateway import Gateway, TokenGateway
from tasks.payments.settings import PaymentSettings
from tasks.payments.stripe_gateway import StripeGateway


def gateway_for(settings: Settings) -> Gateway:
    """The configured gateway (one per process and configuration)."""
    cfg = settings.section(PaymentSettings)
    return _gateway(
        cfg.gateway,
        cfg.api_base,
        cfg.api_key.get_secret_value(),
        cfg.api_timeout,
        tuple(sorted(cfg.provider_exponents.items())),
    )


@cache
def _gateway(
    kind: str, api_base: str, api_key: str, timeout: float, exponents: tuple[tuple[str, int], ...]
) -> Gateway:
    if kind == "stripe":
        return StripeGateway(
            api_key=api_key, api_base=api_base, timeout=timeout, exponents=dict(exponents)
        )
    return TokenGateway()
