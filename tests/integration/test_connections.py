"""Every kind of ledger connection store.db makes carries the same options."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config import Settings
from store.db import application_name, autocommit, connect_async, connect_listen, transaction

# pg_settings gives the timeout in its unit (ms), where SHOW would round it to "30s".
SETTINGS = (
    "SELECT setting, current_setting('application_name') FROM pg_settings "
    "WHERE name = 'statement_timeout'"
)


def _timeout(settings: Settings) -> str:
    return str(settings.database.statement_timeout_ms)


@pytest.mark.parametrize("kind", [transaction, autocommit])
def test_sessions_carry_the_timeout_and_the_process_name(settings: Settings, kind: Any) -> None:
    with kind(settings) as session:
        timeout, name = session.connection().exec_driver_sql(SETTINGS).one()
    assert (timeout, name) == (_timeout(settings), application_name())


def test_the_intake_connection_carries_them_and_its_purpose(settings: Settings) -> None:
    async def read() -> tuple[str, str]:
        async with await connect_async(settings, purpose="intake") as conn:
            row = await (await conn.execute(SETTINGS)).fetchone()
            assert row is not None
            return row[0], row[1]

    assert asyncio.run(read()) == (_timeout(settings), application_name("intake"))


def test_the_listen_connection_carries_them_and_listens(settings: Settings) -> None:
    with connect_listen(settings, channel="switchyard_test_channel") as conn:
        timeout, name = conn.execute(SETTINGS).fetchone() or ("", "")
        channels = [row[0] for row in conn.execute("SELECT pg_listening_channels()")]
    assert (timeout, name) == (_timeout(settings), application_name("listen"))
    assert channels == ["switchyard_test_channel"]
