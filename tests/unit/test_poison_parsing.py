"""What counts as a job task's arguments, and as a broker envelope Kombu can deliver."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from workers.broker import deliverable
from workers.poison import parse_job_ids

pytestmark = pytest.mark.usefixtures("no_io")
ID = uuid.uuid4()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (([],), {}),
        (("x",), {}),
        (([str(ID)], "extra"), {}),
        (([str(ID)],), {"job_ids": [str(ID)]}),
        (([str(ID), "not-a-uuid"],), {}),
        (([str(ID), 7],), {}),
        (([None],), {}),
    ],
)
def test_anything_but_one_list_of_job_ids_is_refused(args: Any, kwargs: dict[str, Any]) -> None:
    assert parse_job_ids(args, kwargs) is None


def test_job_ids_come_back_canonical() -> None:
    assert parse_job_ids(([str(ID).upper()],), {}) == [str(ID)]


def envelope(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "body": base64.b64encode(b"[[], {}, {}]").decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"task": "system.echo", "id": str(ID)},
        "properties": {"delivery_tag": str(ID), "body_encoding": "base64", "delivery_info": {}},
    }
    message.update(changes)
    return message


def test_a_celery_envelope_is_deliverable() -> None:
    assert deliverable(envelope())


@pytest.mark.parametrize(
    "message",
    [
        [1, 2, 3],
        "text",
        None,
        {"body": "x"},
        envelope(properties={"body_encoding": "base64"}),  # no delivery tag
        envelope(properties={"delivery_tag": "t", "body_encoding": "rot13"}),
        envelope(body="***not base64***"),
        envelope(headers=["task"]),
    ],
)
def test_what_kombu_cannot_make_a_message_of_is_not(message: Any) -> None:
    assert not deliverable(message)
