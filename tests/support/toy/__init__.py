"""A toy domain, plugged in by settings alone (`extra_domains`), to prove the domain seam.

It follows docs/architecture.md, "How to add a domain": a package, its declaration, its
migration; no core file names it.
"""

from __future__ import annotations

from pathlib import Path

from tasks.registry import Domain, Every
from tests.support.toy import models
from tests.support.toy.schemas import QUEUE, RECORD, TICK
from tests.support.toy.settings import ToySettings

DOMAIN = Domain(
    name="toy",
    job_types=(RECORD, TICK),
    queues=(QUEUE,),
    scopes=("toy:write",),
    handlers="tests.support.toy.jobs",
    routes=("tests.support.toy.routes",),
    schedule={"toy-tick": Every(job_type=TICK.name, seconds=1)},
    settings=ToySettings,
    metadata=models.metadata,
    tables=("toy_notes",),
    migrations=Path(__file__).resolve().parent / "migrations",
)
