"""The fleet over HTTP: provisioning its profile, devices and alert rule with an admin key, and
sending batches to `POST /v1/telemetry`, backing off on 429/503 as `Retry-After` says.

A batch is retried until it is accepted, never dropped: throttled and unavailable answers are
counted, and so is a retry after a lost connection (whose readings the store may then count as
duplicates, if the first attempt got through).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from errors import SwitchyardError
from ops.fleet import Counts, Fleet, FleetBatch, profile_body

BACKOFF_CAP = 30.0  # seconds: the longest wait between two attempts of a batch
TIMEOUT = 30.0


class FleetError(SwitchyardError):
    """The API refused what the simulator sent (a bug or a misconfiguration, not load)."""

    code = "fleet_refused"


@dataclass
class Delivery:
    """What was accepted (`counts`), the batches' ids, and what it took to get there."""

    counts: Counts = field(default_factory=Counts)
    batch_ids: list[str] = field(default_factory=list)
    throttled: int = 0  # 429 answers, each waited out and retried
    unavailable: int = 0  # 503 answers, likewise
    reconnects: int = 0  # attempts retried after a lost connection


def _refused(answer: httpx.Response, what: str) -> FleetError:
    return FleetError(f"{what}: {answer.status_code} {answer.text[:500]}")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def provision(
    api: str, key: str, fleet: Fleet, *, alert_to: str | None = None, workers: int = 8
) -> dict[str, str]:
    """Create (or reuse) the fleet's profile and devices; returns each device's token (a
    device that exists already gets a new credential: its old token stops working)."""
    body = profile_body()
    with httpx.Client(base_url=api, headers=_auth(key), timeout=TIMEOUT) as client:
        made = client.post("/v1/device-profiles", json=body)
        if made.status_code == 409:
            made = client.get(f"/v1/device-profiles/{body['id']}")
            have = made.json() if made.status_code == 200 else {}
            if set(have.get("metrics", {})) != set(body["metrics"]) or (
                have.get("future_policy") != "refuse"
            ):
                raise FleetError(f"profile {body['id']!r} exists with other metrics or policy")
        elif made.status_code != 201:
            raise _refused(made, "creating the profile")
        if alert_to:
            rule = {
                **{"id": "sim-hot", "profile": body["id"], "metric": "temp"},
                **{"set_at": 30, "clear_at": 28, "consecutive": 2},
                **{"channel": "email", "to": alert_to},
            }
            answer = client.post("/v1/alert-rules", json=rule)
            if answer.status_code not in (201, 409):
                raise _refused(answer, "creating the alert rule")

        def device(device_id: str) -> tuple[str, str]:
            answer = client.post("/v1/devices", json={"id": device_id, "profile": body["id"]})
            if answer.status_code == 409:
                answer = client.post(f"/v1/devices/{device_id}/credential")
            if answer.status_code != 201:
                raise _refused(answer, f"provisioning {device_id}")
            return device_id, str(answer.json()["token"])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(device, fleet.ids))


def _retry_after(answer: httpx.Response) -> float:
    value = answer.headers.get("retry-after", "")
    return min(BACKOFF_CAP, float(value)) if value.isdigit() else 1.0


async def post_batch(
    client: httpx.AsyncClient, token: str, batch: FleetBatch, delivery: Delivery
) -> str:
    """Send one batch until it is accepted; returns its id and adds it to `delivery`."""
    body = batch.body()
    headers = {**_auth(token), "Content-Type": "application/json"}
    while True:
        try:
            answer = await client.post("/v1/telemetry", content=body, headers=headers)
        except httpx.TransportError:
            delivery.reconnects += 1
            await asyncio.sleep(1.0)
            continue
        if answer.status_code == 202:
            batch_id = str(answer.json()["id"])
            delivery.counts.add(batch.counts)
            delivery.batch_ids.append(batch_id)
            return batch_id
        if answer.status_code not in (429, 503):
            raise _refused(answer, f"batch of {batch.device}")
        if answer.status_code == 429:
            delivery.throttled += 1
        else:
            delivery.unavailable += 1
        await asyncio.sleep(_retry_after(answer))


def http_client(api: str, *, connections: int) -> httpx.AsyncClient:
    """An async client for `api` with `connections` keep-alive connections."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=api, timeout=TIMEOUT, limits=limits)
