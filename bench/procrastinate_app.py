"""The procrastinate contender's app: `procrastinate --app bench.procrastinate_app.app worker`.

One no-op task; bench.drain reads completions from procrastinate's own `procrastinate_events`.
The worker's connection string comes from `BENCH_PROCRASTINATE_DSN`.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector


def create_app(dsn: str) -> App:
    """A procrastinate app on `dsn` with the `bench.noop` task."""
    app = App(connector=PsycopgConnector(conninfo=dsn))

    @app.task(name="bench.noop")
    def noop() -> None:
        """Do nothing."""

    return app


app = create_app(os.environ.get("BENCH_PROCRASTINATE_DSN", "postgresql:///procrastinate"))
