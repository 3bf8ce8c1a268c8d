"""A newcomer's first hour, against a real `switchyard dev`: the README's marked examples run as
written and every `curl` in them answers 2xx with the dev key; the email they send lands in the
dev mail sink and `switchyard dev-mail` shows it; a webhook to a loopback receiver is delivered
(dev admits loopback, and says so); and SIGHUP — the terminal closing — stops everything, the
embedded PostgreSQL included."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.processes import ROOT, switchyard, wait_until
from devstack.receiver import start_receiver
from tests.support.ops import Banner, DevStackProcess, alive
from tests.support.readme import marked_examples, run_example


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp root (the embedded PostgreSQL's user must traverse it)."""
    parent = Path(tempfile.mkdtemp(prefix="switchyard-readme-test-"))
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


def repository_stand_in(tmp_path: Path, data: Path) -> Path:
    """A directory that looks like the repository's root to the examples: `.switchyard` is the
    stack's data dir, `.venv` the project's virtualenv."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".switchyard").symlink_to(data)
    (root / ".venv").symlink_to(ROOT / ".venv")
    return root


def dev_mail(stack: DevStackProcess, *args: str) -> str:
    done = subprocess.run(
        switchyard("dev-mail", *args), env=stack.env, cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def deliver_a_webhook_to_loopback(banner: Banner, tmp_path: Path) -> None:
    """Register a receiver on 127.0.0.1 and send it a webhook with the dev key: delivered."""
    receiver = start_receiver(tmp_path)
    headers = {"Authorization": f"Bearer {banner.token}"}
    try:
        url = f"{receiver.base}/ok/hook"
        made = httpx.post(
            f"{banner.api}/v1/webhook-endpoints", json={"url": url}, headers=headers, timeout=10
        )
        assert made.status_code == 201, made.text
        sent = httpx.post(
            f"{banner.api}/v1/notifications",
            json={"channel": "webhook", "to": url, "data": {"hello": "loopback"}},
            headers=headers, timeout=10,
        )  # fmt: skip
        assert sent.status_code in (201, 202), sent.text
        wait_until(lambda: receiver.requests("/ok/hook"), timeout=60, what="the webhook")
        body = json.loads(receiver.requests("/ok/hook")[0]["body"])
        assert body["data"] == {"hello": "loopback"}
    finally:
        receiver.process.stop()


@pytest.mark.timeout(420)  # an embedded PostgreSQL start and a payment tour on a shared machine
def test_readme_examples_run_as_written_and_sighup_stops_everything(
    tmp_path: Path, data_dir: Path
) -> None:
    examples = marked_examples()
    assert len(examples) >= 4, "the tour, jobs, notifications and payments examples"
    stack = DevStackProcess(data_dir, tmp_path / "dev.log")
    try:
        banner = stack.wait_up()
        assert "webhooks may reach loopback in dev" in stack.proc.output()
        assert "Mail       switchyard dev-mail list" in stack.proc.output()
        cwd = repository_stand_in(tmp_path, data_dir)
        for example in examples:
            run = run_example(example, api=banner.api, cwd=cwd, env=stack.env)
            failed = [s for s in run.statuses if not 200 <= s[0] < 300]
            where = f"\n--- example:\n{example}\n--- out:\n{run.stdout}\n--- err:\n{run.stderr}"
            assert run.returncode == 0 and not failed, f"{failed}{where}"
            assert len(run.statuses) >= example.count("curl -s"), where

        def welcome_mail() -> dict[str, Any] | None:
            caught = json.loads(dev_mail(stack, "list", "--json"))
            return next((m for m in caught if m["to"] == "ada@example.com"), None)

        mail = wait_until(welcome_mail, timeout=60, interval=0.5, what="the email in dev-mail")
        assert mail["subject"] == "Hi Ada"
        shown = dev_mail(stack, "show", str(mail["id"]))
        assert "Subject: Hi Ada" in shown and "Hello Ada" in shown
        assert (data_dir / "mail" / f"{mail['id']:06d}.eml").is_file()

        deliver_a_webhook_to_loopback(banner, tmp_path)

        tree = stack.tree()
        assert any("postgres" in " ".join(p.cmdline()) for p in tree)
        assert stack.interrupt(sig=signal.SIGHUP) == 0
        assert alive(tree) == [], "processes left behind after SIGHUP"
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
        assert "stopped; nothing left running" in stack.proc.output()
    finally:
        stack.close()
