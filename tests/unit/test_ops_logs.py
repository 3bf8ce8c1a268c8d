"""Logs: one JSON object per line in production, job context on every line, no secret ever."""

from __future__ import annotations

import json
import subprocess
import sys

from logs import REDACTED, scrub

TOKEN = "sy_0123456789ab_" + "Q" * 43

EMIT = f"""
import structlog
from logs import configure_logging, get_logger
log = get_logger("probe")  # made at import time, before the configuration: must follow it
configure_logging("json")
with structlog.contextvars.bound_contextvars(job_id="j-1", job_type="system.echo", attempt=2):
    log.info("inside_job", payload={{"to": "a@b.c", "webhook_secret": "whsec_1", "smtp": {{
        "password": "pw-1"}}}})
    try:
        raise RuntimeError("auth failed for {TOKEN} via redis://:pw-2@redis:6379/0")
    except RuntimeError:
        log.exception("job_crashed")
import logging
logging.getLogger("celery").warning("connecting to postgresql://app:pw-3@db/app")
log.info("headers", authorization="Bearer {TOKEN}", api_key="{TOKEN}")
"""


def test_every_line_is_json_with_job_context_and_no_secret() -> None:
    done = subprocess.run(
        [sys.executable, "-c", EMIT], capture_output=True, text=True, timeout=30, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["event"] for line in lines][:2] == ["inside_job", "job_crashed"]
    for line in lines[:2]:
        assert (line["job_id"], line["job_type"], line["attempt"]) == ("j-1", "system.echo", 2)
        assert line["logger"] == "probe"
    for secret in ("whsec_1", "pw-1", "pw-2", "pw-3", TOKEN):
        assert secret not in done.stderr, f"{secret} leaked"
    assert lines[0]["payload"]["webhook_secret"] == REDACTED
    assert lines[0]["payload"]["to"] == "a@b.c"
    assert "sy_0123456789ab_***" in lines[1]["exception"]  # the key id stays, for tracing
    assert "postgresql://app:***@db/app" in lines[2]["event"]


def test_scrub_keeps_what_is_not_secret() -> None:
    event = {"job_id": "j", "count": 3, "items": [{"name": "a", "token": "t"}], "url": "http://x/"}
    assert scrub(event) == {
        "job_id": "j",
        "count": 3,
        "items": [{"name": "a", "token": REDACTED}],
        "url": "http://x/",
    }
