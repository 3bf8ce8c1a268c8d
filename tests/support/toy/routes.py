"""`/v1/toy/notes`: submit a note (a toy.record job) and read the notes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel
from sqlalchemy import select

from store.api_keys import Principal
from tasks.enqueue import enqueue
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.routing import StrictRoute
from tests.support.toy.models import ToyNote
from tests.support.toy.schemas import RECORD

router = APIRouter(prefix="/v1/toy", tags=["toy"], route_class=StrictRoute)
Writer = Annotated[Principal, Depends(require_scope("toy:write"))]


class NoteRequest(BaseModel):
    """A note to record."""

    text: str


@router.post("/notes", status_code=status.HTTP_202_ACCEPTED)
def post_note(
    body: NoteRequest, session: SessionDep, settings: SettingsDep, principal: Writer
) -> dict[str, str]:
    """Accept a note: its job is committed before the answer."""
    job_id = enqueue(
        session, RECORD.name, {"text": body.text}, producer=principal.producer, settings=settings
    ).job_id
    session.commit()
    return {"job_id": str(job_id)}


@router.get("/notes")
def get_notes(session: SessionDep, _: Writer) -> list[dict[str, Any]]:
    """Every note, oldest first."""
    rows = session.scalars(select(ToyNote).order_by(ToyNote.id))
    return [{"job_id": str(r.job_id), "kind": r.kind, "text": r.text} for r in rows]
