"""`make chaos`: own servers, the whole stack, a mixed load, a fault schedule, the invariants.

The run, in order: a PostgreSQL and a Redis of its own in a temp dir (and, where the machine
allows it, a network namespace for one worker); migrations; API, relay, beat and three workers
(concurrency 2) under a supervisor that restarts whatever exits; webhook endpoints on a local
receiver; the load and the fault schedule together; a bounded wait for every job to finish;
the invariants; a schemathesis pass against the served OpenAPI; the table. Exit code 1 if an
invariant failed, 0 otherwise.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from chaos import fuzz, invariants, netns, payments_load, report
from chaos import payments as chaos_payments
from chaos.faults import Faults
from chaos.ledger import non_terminal, snapshot
from chaos.load import Targets, drive, plan
from chaos.servers import OwnPostgres, OwnRedis
from chaos.stack import Stack, stack_settings
from config import Settings
from devstack.processes import free_port, wait_until
from devstack.readiness import answers
from devstack.receiver import Receiver, start_receiver
from ops.migrate import upgrade
from store.api_keys import create_key
from store.db import dispose_engines, transaction
from tasks.payments.settings import PaymentSettings
from tasks.registry import domains

BUDGET = 600.0  # seconds for the whole run, teardown included
TEARDOWN = 30.0
CALLBACK_SECRET = "whsec_" + "Y2hhb3MtYmF0dGVyeS1jYWxsYmFjay1zZWNyZXQ="
LOAD_SCOPES = ["jobs:write", "jobs:read", "notifications:write", "notifications:read",
               "payments:write", "payments:read"]  # fmt: skip
PAYMENTS_TAIL = 60.0  # seconds the payment flows may run on after the load


@dataclass(frozen=True)
class Options:
    """What `python -m chaos` was asked for."""

    requests: int
    duration: float
    converge_timeout: float
    fuzz_seconds: float
    seed: int
    partition: bool
    payments: int  # payment flows (0: no payments run)


def progress(message: str) -> None:
    """One progress line on stderr; stdout keeps the table."""
    print(f"  … {message}", file=sys.stderr, flush=True)


def _key(settings: Settings, scopes: list[str], name: str) -> str:
    with transaction(settings) as session:
        _, token = create_key(session, name=name, scopes=scopes, known=domains(settings).scopes)
    return token


def _endpoint(base: str, token: str, url: str) -> str:
    resp = httpx.post(
        f"{base}/v1/webhook-endpoints",
        json={"url": url},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    resp.raise_for_status()
    return str(resp.json()["secret"])


def _start_stack(
    stack: Stack, *, partition: netns.Partition | None, pg: OwnPostgres, redis: OwnRedis,
    payments: PaymentSettings | None,
) -> str:  # fmt: skip
    """API, relay, beat, two workers on every queue and a third (namespaced when possible)."""
    port = free_port()
    stack.add("api", "api", "--port", str(port))
    stack.add("relay", "relay")
    stack.add("beat", "beat")
    for n in (1, 2):
        stack.add(f"worker-{n}", "worker", "--concurrency", "2", "--hostname", f"worker-{n}@%h",
                  ready_marker="ready.")  # fmt: skip
    # The third consumes only the maintenance queue: from its namespace the receiver (on the
    # host's loopback) is out of reach, so it runs no webhooks.
    third = ("worker", "--queues", "maintenance", "--concurrency", "2")
    if partition is not None:
        inside = stack_settings(pg.url(partition.host_ip), redis.url(partition.host_ip),
                                payments=payments)  # fmt: skip
        stack.add("worker-ns", *third, "--hostname", "worker-ns@%h", settings=inside,
                  wrap=partition.wrap, ready_marker="ready.")  # fmt: skip
    else:
        stack.add("worker-3", *third, "--hostname", "worker-3@%h", ready_marker="ready.")
    stack.wait_ready()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{base}/healthz", timeout=1), timeout=60, what="the API")
    return base


def _converge(settings: Settings, *, timeout: float) -> float | None:
    """Seconds until no job is left unfinished, or None if `timeout` passed first."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if non_terminal(settings) == 0:
                return time.monotonic() - start
        except Exception as exc:  # the ledger may still be recovering; keep polling
            progress(f"convergence poll failed: {type(exc).__name__}")
        time.sleep(1.0)
    return None


def run(opts: Options) -> int:
    """The whole battery; returns the exit code."""
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="switchyard-chaos-"))
    logs = root / "logs"
    logs.mkdir()
    reason = netns.unavailable() if opts.partition else "turned off (--no-partition)"
    progress(f"run dir {root}; partition: {reason or 'available'}")
    cleanup = ExitStack()
    try:
        cleanup.callback(shutil.rmtree, root / "pgdata", ignore_errors=True)
        cleanup.callback(shutil.rmtree, root / "redis", ignore_errors=True)
        partition = None
        if reason is None:
            partition = netns.Partition.create()
            cleanup.callback(partition.destroy)
        hosts = ["127.0.0.1", *([partition.host_ip] if partition else [])]
        pg = OwnPostgres(root, port=free_port(), hosts=hosts,
                         trusted=[partition.network] if partition else [])  # fmt: skip
        cleanup.callback(lambda: pg.stop() if pg.running() else None)
        pg.init()
        redis = OwnRedis(root, port=free_port(), binds=hosts)
        cleanup.callback(redis.stop)
        redis.start(aof=True)
        payments = None
        if opts.payments:
            simulator, sim_url = chaos_payments.start_simulator(logs)
            cleanup.callback(simulator.stop)
            payments = chaos_payments.settings_for(sim_url)
        settings = stack_settings(pg.url(), redis.url(), payments=payments)
        cleanup.callback(dispose_engines)
        upgrade(settings)
        token = _key(settings, LOAD_SCOPES, "chaos-load")
        receiver: Receiver = start_receiver(logs)
        cleanup.callback(receiver.process.stop)
        stack = Stack(settings, logs)
        cleanup.callback(stack.stop_all)
        progress("starting the stack")
        base = _start_stack(stack, partition=partition, pg=pg, redis=redis, payments=payments)
        stack.supervise()
        targets = Targets(
            hooks=f"{receiver.base}/ok/hooks",
            slow_hooks=f"{receiver.base}/delay/50/hooks",
            callbacks=f"{receiver.base}/ok/callbacks",
            callback_secret=CALLBACK_SECRET,
        )
        secrets = {
            "/ok/hooks": _endpoint(base, token, targets.hooks),
            "/delay/50/hooks": _endpoint(base, token, targets.slow_hooks),
            "/ok/callbacks": CALLBACK_SECRET,
        }
        faults = Faults(stack, redis, pg, partition, reason,
                        second_beat=lambda: stack.add("beat-2", "beat"))  # fmt: skip
        items = plan(opts.requests, seed=opts.seed, targets=targets)
        progress(f"stack up after {time.monotonic() - began:.0f} s; "
                 f"{len(items)} requests over {opts.duration:.0f} s with faults")  # fmt: skip
        load_started = time.monotonic()
        fault_thread = faults.run(duration=opts.duration, started=load_started)
        pay, pay_rows = None, list[invariants.Row]()
        if payments is not None:
            pay = chaos_payments.PaymentRun(
                payments.api_base, base, token, payments_load.plan(opts.payments, seed=opts.seed)
            )
            pay.start(duration=opts.duration,
                      deadline=load_started + opts.duration + PAYMENTS_TAIL)  # fmt: skip
        outcomes = drive(base, token, items, duration=opts.duration)
        fault_thread.join()
        load_seconds = time.monotonic() - load_started
        progress(f"load done in {load_seconds:.0f} s; waiting for every job to finish")
        converged = _converge(settings, timeout=opts.converge_timeout)
        if pay is not None:
            progress("payments: waiting for the flows; faults off, janitor, sweep")
            pay.settle(settings, lambda: _converge(settings, timeout=opts.converge_timeout))
            progress("payments: reconciling, then with injected mismatches")
            pay_rows = pay.rows(settings)
        snap = snapshot(settings, receiver)
        rows = [
            *invariants.client_rows(outcomes),
            *invariants.ledger_rows(outcomes, snap),
            *invariants.callback_rows(snap),
            *invariants.webhook_rows(snap, secrets=secrets),
            invariants.Row("convergence (load end → every job terminal)",
                           "-" if converged is None else f"{converged:.1f}s", converged is not None,
                           f"bound {opts.converge_timeout:.0f} s; load took {load_seconds:.0f} s"),
        ]  # fmt: skip
        failures = invariants.failed(rows + pay_rows)
        spare = BUDGET - TEARDOWN - (time.monotonic() - began)
        fuzz_rows = fuzz.run(base, _key(settings, sorted(domains(settings).scopes), "chaos-fuzz"),
                             seconds=min(opts.fuzz_seconds, spare), logs=logs)  # fmt: skip
        print(report.table("invariants", rows))
        if pay is not None:
            print(report.table("payments (against the simulator's ground truth)", pay_rows))
        print(report.table("processes", report.restart_rows(stack.exits)))
        print(report.fault_lines(faults.done))
        print(report.table("schemathesis (reported, not judged: see docs/operations.md)",
                           fuzz_rows))  # fmt: skip
        print(f"logs: {logs}   total {time.monotonic() - began:.0f} s")
        print(report.verdict(failures))
        return 1 if failures else 0
    finally:
        progress("tearing down")
        cleanup.close()
