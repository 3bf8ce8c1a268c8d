"""A small Python client for services that submit jobs to Switchyard."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import httpx

from errors import SwitchyardError
from store.states import TERMINAL_STATES


class SwitchyardAPIError(SwitchyardError):
    """The intake refused a request; `problem` is its RFC 9457 body."""

    code = "api_error"

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('code')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem
        self.field: str | None = problem.get("field")


class SwitchyardClient:
    """Submit and follow jobs; submissions carry an Idempotency-Key, so retrying them is safe."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 10.0, retries: int = 3
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}
        )
        self.retries = retries

    def __enter__(self) -> SwitchyardClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if resp.status_code != 503 or attempt == self.retries:
                    break
            time.sleep(min(5.0, 0.2 * 2**attempt))
        if resp.status_code >= 400:
            raise SwitchyardAPIError(resp.status_code, resp.json())
        return resp.json()  # type: ignore[no-any-return]

    def submit(
        self,
        job_type: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit a job; returns `{id, state, links}` once it is durable."""
        body: dict[str, Any] = {"type": job_type, "payload": payload, "priority": priority}
        if run_at is not None:
            body["run_at"] = run_at.isoformat()
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        key = idempotency_key or str(uuid.uuid4())
        return self._request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})

    def submit_many(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit up to 1,000 jobs (`POST /v1/jobs/batch` bodies: `type`, `payload`, …) in one
        request; each job without an `idempotency_key` gets a fresh one, so a retry is safe.
        Returns one result per job, in order (`status` 202, 200 for a replay, or 422)."""
        keyed = [{"idempotency_key": str(uuid.uuid4()), **job} for job in jobs]
        return self._request("POST", "/v1/jobs/batch", json={"jobs": keyed})["results"]  # type: ignore[no-any-return]

    def get(self, job_id: str) -> dict[str, Any]:
        """The job with its attempts."""
        return self._request("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job that has not started."""
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> dict[str, Any]:
        """Replay a dead job."""
        return self._request("POST", f"/v1/jobs/{job_id}/retry")

    def wait(self, job_id: str, *, timeout: float = 60.0, interval: float = 0.2) -> dict[str, Any]:
        """Poll until the job reaches a terminal state; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["state"] in TERMINAL_STATES:
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout}s")
            time.sleep(interval)
