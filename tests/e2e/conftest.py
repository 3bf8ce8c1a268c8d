"""Fixtures of the e2e modules: a whole stack per module, and a key per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from tests.support.keys import MakeKey
from tests.support.notifications_stack import Stack, run_stack, token_for
from tests.support.payments import PaymentStack, run_payment_stack


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path) -> Iterator[Stack]:
    """API, relay, beat and a worker wired to a real SMTP server and HTTP receiver."""
    yield from run_stack(settings, logs_dir)


@pytest.fixture
def token(stack: Stack, make_key: MakeKey) -> Iterator[str]:
    """A key with the notification scopes; the test's notifications are removed afterwards."""
    yield from token_for(stack, make_key)


@pytest.fixture(scope="module")
def pay_stack(settings: Settings, logs_dir: Path) -> Iterator[PaymentStack]:
    """API, relay, beat and a worker on Stripe's API at a simulator that sends webhooks."""
    yield from run_payment_stack(settings, logs_dir)
