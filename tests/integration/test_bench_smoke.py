"""The benchmarks run end to end at a tiny size (their figures are not checked here)."""

from __future__ import annotations

import pytest

from bench import (
    drain,
    enqueue,
    intake,
    iot_aggregate,
    iot_derived,
    iot_ingest,
    iot_mqtt,
    latency,
    ledger,
    payments,
    recon,
)


def test_intake_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert intake.main(["--requests", "60", "--rounds", "1", "--warmup", "10"]) == 0
    out = capsys.readouterr().out
    assert "bare FastAPI 202" in out
    assert "intake ratio" in out


def test_drain_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # Every contender's run raises unless its own record shows all 40 jobs completed.
    assert drain.main(["--jobs", "40", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for key, name in drain.NAMES.items():
        (row,) = [line for line in lines if line.startswith(f"  {name} ")]
        assert "ms/job" in row
        ratios = [line for line in lines if line.startswith("  drain ratio") and name in line]
        assert len(ratios) == (key != "ours")


def test_ledger_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert ledger.main(["--transfers", "40", "--rounds", "1", "--concurrency", "2"]) == 0
    out = capsys.readouterr().out
    assert "B-ledger ratio" in out and "B-ledger-hot ratio" in out


def test_payments_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # Each round raises unless every intent succeeded with its hold, capture and fee.
    assert payments.main(["--intents", "10", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "stock Celery no-op" in out and "B-payments ratio" in out
    assert "1 rounds x 10 intents" in out


def test_enqueue_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert enqueue.main(["--jobs", "50", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "pgqueuer Queries.enqueue" in out and "enqueue ratio" in out


def test_latency_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert latency.main(["--rate", "20", "--seconds", "0.5", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("switchyard enqueue", "switchyard HTTP", "stock Celery", "pgqueuer"):
        (row,) = [line for line in out.splitlines() if line.startswith(f"  {name} ")]
        assert row.endswith("(10 jobs)")


def test_recon_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert recon.main(["--intents", "300", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "raw COPY into a staging table" in out and "B-recon ratio" in out


def test_iot_ingest_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--devices", "20", "--batches", "4", "--size", "100", "--rounds", "1", "--warmup", "1"]
    assert iot_ingest.main(args) == 0
    out = capsys.readouterr().out
    assert "raw binary COPY, partitioned table" in out and "B-iot-ingest ratio" in out


def test_iot_mqtt_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--devices", "3", "--messages", "10", "--size", "10", "--rounds", "1"]
    assert iot_mqtt.main(args) == 0
    out = capsys.readouterr().out
    assert "bare paho subscriber" in out and "B-iot-mqtt ratio" in out


def test_iot_aggregate_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--series", "2", "--every", "60", "--rounds", "1", "--queries", "2"]
    assert iot_aggregate.main(args) == 0
    out = capsys.readouterr().out
    assert "tasks.iot.aggregate (roll-ups)" in out and "answers identical" in out


def test_iot_derived_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # Each round raises unless the store gained exactly the unique keys sent.
    args = ["--devices", "20", "--batches", "4", "--size", "100", "--rounds", "1", "--warmup",
            "1", "--rules", "40"]  # fmt: skip
    assert iot_derived.main(args) == 0
    out = capsys.readouterr().out
    assert "B-iot-derived ratio" in out and "off keeps the latest value" in out
    assert "notification job created: p95" in out  # how many rules fire depends on the clock
