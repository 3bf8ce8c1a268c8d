"""The intake baseline: a bare FastAPI endpoint that answers 202 without I/O.

Served exactly as `switchyard api` serves the real intake (one uvicorn process, same options),
so the two differ only in what the endpoint does.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, status

app = FastAPI(title="bare 202")


@app.post("/v1/jobs", status_code=status.HTTP_202_ACCEPTED)
async def submit(body: dict[str, Any]) -> dict[str, Any]:
    """Read the JSON body and answer 202 with an id, writing nothing anywhere."""
    job_id = uuid.uuid4()
    return {"id": str(job_id), "state": "accepted", "links": {"self": f"/v1/jobs/{job_id}"}}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness, for the benchmark's readiness wait."""
    return {"status": "ok"}


def main() -> None:
    """Serve the bare app with the same uvicorn options as `switchyard api`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
