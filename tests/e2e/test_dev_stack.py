"""`switchyard dev` end to end: the printed curl runs a job, Flower and /metrics see it, Ctrl-C
leaves nothing behind, a second stack on the same data refuses, and data survives a restart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from devstack.processes import switchyard, wait_until
from tasks.iot.mqtt_intake import telemetry_topic
from tests.support.iot import batch, provision, reading
from tests.support.mqtt import Broker, Client
from tests.support.ops import Banner, DevStackProcess, alive
from workers.task_events import attempt_uuid


def run_printed_curl(banner: Banner) -> dict[str, Any]:
    """Run the banner's two lines exactly as printed, in bash; returns the job they read back."""
    script = f"set -euo pipefail\n{banner.submit_line}\n{banner.read_line}\n"
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    job: dict[str, Any] = json.loads(done.stdout)
    return job


def job_state(banner: Banner, job_id: str) -> str:
    """The job's state, through the API with the printed key."""
    resp = httpx.get(
        f"{banner.api}/v1/jobs/{job_id}",
        headers={"Authorization": f"Bearer {banner.token}"},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["state"])


def flower_get(banner: Banner, path: str, **params: Any) -> Any:
    """GET Flower's API with the printed credentials."""
    auth = (banner.flower_user, banner.flower_password)
    resp = httpx.get(f"{banner.flower}{path}", params=params, auth=auth, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def metric_value(text: str, name: str) -> float | None:
    """The value of one sample line of the Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def pay_intent_through_the_simulator(banner: Banner, data: Path) -> None:
    """The stack's simulator answers, and an intent confirmed with the printed key succeeds
    through it (the Stripe adapter)."""
    simulator = json.loads((data / "dev.json").read_text())["payment_simulator"]
    headers = {"Authorization": f"Bearer {banner.token}"}
    base = f"{banner.api}/v1/payment-intents"
    made = httpx.post(base, json={"amount": 1_000, "currency": "EUR"}, headers=headers, timeout=5)
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    body = {"payment_method": "pm_card_visa"}
    done = httpx.post(f"{base}/{pid}/confirm", json=body, headers=headers, timeout=5)
    assert done.status_code == 202, done.text

    def succeeded() -> bool:
        status: str = httpx.get(f"{base}/{pid}", headers=headers, timeout=5).json()["status"]
        return status == "succeeded"

    wait_until(succeeded, timeout=30, what="the intent to succeed through the simulator")
    truth = httpx.get(f"{simulator}/_sim/truth", timeout=5).json()["payment_intents"]
    assert [p["amount"] for p in truth] == [1_000]

    def delivered() -> list[int] | None:  # its webhooks reach the API, signed with its secret
        sent = httpx.get(f"{simulator}/_sim/events", timeout=5).json()["deliveries"]
        return [d["status"] for d in sent] if len(sent) == 2 else None

    assert wait_until(delivered, timeout=30, what="the simulator's two webhooks") == [200, 200]
    secret = data / "dev-webhook-secret"
    assert secret.read_text().startswith("whsec_dev_") and secret.stat().st_mode & 0o077 == 0

    # The CLI from a second shell reconciles against the stack's simulator: a clean report.
    shell = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    shell.update(SWITCHYARD_DATA_DIR=str(data), SWITCHYARD_PAYMENTS__RECON_SETTLE_AFTER="0")
    recon = subprocess.run(
        switchyard("payments", "recon", "--run", "--json"),
        env=shell, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert recon.returncode == 0, recon.stderr
    assert "'lines': 1," in recon.stderr and "'intents': 1," in recon.stderr, recon.stderr
    assert json.loads(recon.stdout) == []


def publish_as_a_new_device(banner: Banner, data: Path, url: str) -> None:
    """A device created through the API publishes over MQTT with its token: the dev stack's
    API provisions the dev broker."""
    token = provision(banner.api, banner.token, device="dev-mqtt-1")
    broker = Broker(data / "mqtt")
    broker.port = int(url.rpartition(":")[2])
    client = Client(broker, "dev-mqtt-1", token)
    try:
        assert client.connected, client.connack
        sent = batch(reading("temp", datetime.now(UTC) - timedelta(minutes=1), 21.5))
        assert not client.publish(telemetry_topic("dev-mqtt-1"), sent).is_failure
    finally:
        client.close()
    headers = {"Authorization": f"Bearer {banner.token}"}

    def latest() -> Any:
        got = httpx.get(f"{banner.api}/v1/devices/dev-mqtt-1/latest", headers=headers, timeout=5)
        return got.json() if got.status_code == 200 and got.json() else None

    wait_until(latest, timeout=30, what="the device's reading through the MQTT bridge")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp root, which other pytest runs chmod 0700 at start
    (the embedded PostgreSQL runs as its own user and must traverse the path)."""
    parent = Path(tempfile.mkdtemp(prefix="switchyard-dev-test-"))
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.timeout(300)  # two embedded-PostgreSQL starts and a payment on a shared machine
def test_dev_stack_runs_a_job_shows_it_everywhere_and_stops_clean(
    tmp_path: Path, data_dir: Path
) -> None:
    data = data_dir
    stack = DevStackProcess(data, tmp_path / "dev.log")
    try:
        banner = stack.wait_up()
        job = run_printed_curl(banner)
        assert job["type"] == "system.echo"
        assert job["payload"] == {"hello": "world"}
        wait_until(lambda: job_state(banner, job["id"]) == "succeeded", timeout=30, what="the job")

        pay_intent_through_the_simulator(banner, data)
        mqtt = json.loads((data / "dev.json").read_text())["mqtt"]
        assert mqtt.startswith("mqtt://127.0.0.1:") and f"MQTT       {mqtt}" in stack.proc.output()
        wait_until(lambda: "mqtt_subscribed" in stack.proc.output(), what="the MQTT bridge")
        publish_as_a_new_device(banner, data, mqtt)

        workers = flower_get(banner, "/api/workers", refresh=1)
        assert any(name.startswith("dev@") for name in workers), workers

        seen: dict[str, Any] = {}

        def flower_task() -> dict[str, Any] | None:
            seen.update(flower_get(banner, "/api/tasks"))
            task = seen.get(attempt_uuid(job["id"], 1))
            return task if task and task["state"] == "SUCCESS" else None

        try:
            task = wait_until(flower_task, timeout=30, what="Flower to list the task")
        except AssertionError as exc:
            states = {k: (v["name"], v["state"]) for k, v in seen.items()}
            raise AssertionError(
                f"{exc}\nFlower saw {states}\n{stack.proc.output()[-5000:]}"
            ) from None
        assert task["name"] == "system.echo"
        assert task["worker"].startswith("dev@")
        unauthenticated = httpx.get(f"{banner.flower}/api/workers", timeout=5)
        assert unauthenticated.status_code == 401

        metrics = httpx.get(
            f"{banner.api}/metrics", headers={"Authorization": f"Bearer {banner.token}"}, timeout=5
        ).text
        assert metric_value(metrics, 'switchyard_jobs_accepted_total{job_type="system.echo"}') == 1
        assert metric_value(metrics, 'switchyard_jobs_succeeded_total{job_type="system.echo"}') == 1
        assert (
            metric_value(metrics, 'switchyard_job_run_seconds_count{job_type="system.echo"}') == 1
        )
        # The echo, and beat's payments upkeep and the intent's provider call besides.
        assert (metric_value(metrics, 'switchyard_ledger_jobs{state="succeeded"}') or 0) >= 2

        # A second terminal: the operator's CLI finds the running stack through the data dir.
        listed = subprocess.run(
            [*switchyard("jobs", "list", "--type", "system.echo", "--json")], env=stack.env,
            capture_output=True,
            text=True, timeout=60, check=True,
        )  # fmt: skip
        assert [j["id"] for j in json.loads(listed.stdout)] == [job["id"]]

        second = subprocess.run(
            switchyard("dev"), env=stack.env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 3
        assert "already running" in second.stderr

        tree = stack.tree()
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        for part in (
            "cli api",
            "cli relay",
            "cli worker",
            "cli beat",
            "cli flower",
            "redis-server",
            "mosquitto",
        ):
            assert part in names, f"{part} missing from the process tree: {names}"
        assert "postgres" in names
        assert stack.interrupt() == 0
        assert alive(tree) == [], "processes left behind after Ctrl-C"
        assert "stopped; nothing left running" in stack.proc.output()
    finally:
        stack.close()

    again = DevStackProcess(data, tmp_path / "dev-again.log")
    try:
        banner_again = again.wait_up()
        assert banner_again.token == banner.token  # the key, like the ledger, survived
        assert job_state(banner_again, job["id"]) == "succeeded"
        tree = again.tree()
        assert again.interrupt() == 0
        assert alive(tree) == []
    finally:
        again.close()


def child_pid(stack: DevStackProcess, command: str) -> int | None:
    """The pid of the supervisor's child running `cli COMMAND`, if one runs."""
    for proc in psutil.Process(stack.proc.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if f"cli {command}" in " ".join(proc.cmdline()):
                pid: int = proc.pid
                return pid
    return None


def kill_and_see_it_restarted(
    stack: DevStackProcess, command: str, *, crash: int, delay: int
) -> None:
    """SIGKILL the child running `cli COMMAND`; the supervisor says it restarts it after
    `delay` seconds, and a new one runs."""
    pid = wait_until(lambda: child_pid(stack, command), what=command)
    os.kill(pid, signal.SIGKILL)
    line = f"{command} exited with -9; restarting it in {delay}s (crash {crash} in a row)"
    wait_until(lambda: line in stack.proc.output(), timeout=30, what=line)
    wait_until(
        lambda: child_pid(stack, command) not in (None, pid), timeout=30, what=f"a new {command}"
    )


@pytest.mark.timeout(300)
def test_dev_restarts_a_killed_child_with_backoff_and_says_so(
    tmp_path: Path, data_dir: Path
) -> None:
    stack = DevStackProcess(data_dir, tmp_path / "dev.log")
    try:
        banner = stack.wait_up()
        kill_and_see_it_restarted(stack, "relay", crash=1, delay=1)
        kill_and_see_it_restarted(stack, "relay", crash=2, delay=2)  # again at once: 2 s
        assert "relay restarted (pid" in stack.proc.output()
        job = run_printed_curl(banner)  # the restarted relay publishes it
        wait_until(lambda: job_state(banner, job["id"]) == "succeeded", timeout=30, what="the job")
        tree = stack.tree()
        assert stack.interrupt() == 0
        assert alive(tree) == [], "processes left behind after Ctrl-C"
    finally:
        stack.close()
