"""Batches that carry several jobs: each job keeps its own outcome, and a batch that
runs out of lease hands its unstarted jobs back instead of running past it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import JobPolicy, Settings
from devstack.processes import isolated
from tests.support.api import finished, submit_all
from tests.support.stack import start_process, start_worker

POLICIES = {
    "system.fail": JobPolicy(
        max_attempts=3,
        jitter=False,
        backoff_base=0.3,
        backoff_cap=1,
        lease_timeout=20,
        batch_size=10,
    ),
    # Three 1.5 s sleeps in one batch with a 4 s lease: the third would start after half
    # the lease has gone, so it is released and runs in a batch of its own.
    "system.sleep": JobPolicy(lease_timeout=4, batch_size=3),
}


@pytest.fixture
def batching(settings: Settings, logs_dir: Path, clean_ledger: None) -> Iterator[Settings]:
    """A relay and a one-process worker on a private prefix, with batching policies."""
    own = isolated(settings, job_policies={**settings.job_policies, **POLICIES})
    relay = start_process(own, logs_dir, "relay")
    worker = start_worker(own, logs_dir, name="batching", concurrency=1)
    yield own
    worker.stop()
    relay.stop()


def test_jobs_sharing_a_batch_each_keep_their_own_outcome(batching: Settings) -> None:
    ok, retried, doomed, ok_too = submit_all(
        batching,
        [
            ("system.fail", {"times": 0}),
            ("system.fail", {"times": 1}),
            ("system.fail", {"times": 1, "mode": "permanent"}),
            ("system.fail", {"times": 0}),
        ],
    )
    result = finished(batching, [ok, retried, doomed, ok_too])
    assert result[ok] == ("succeeded", ["succeeded"])
    assert result[retried] == ("succeeded", ["retrying", "succeeded"])
    assert result[doomed] == ("dead", ["dead"])
    assert result[ok_too] == ("succeeded", ["succeeded"])


def test_a_batch_out_of_lease_releases_the_jobs_it_has_not_started(
    batching: Settings,
) -> None:
    ids = submit_all(batching, [("system.sleep", {"seconds": 1.5})] * 3)
    result = finished(batching, ids)
    # Without the release the third would start at 3 s into a 4 s lease and be killed by the
    # time limit (outcomes ["lost", "succeeded"]). Released, its unstarted attempt is erased.
    assert all(r == ("succeeded", ["succeeded"]) for r in result.values()), result
