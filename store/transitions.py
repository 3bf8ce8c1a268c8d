"""Which states each job transition may move a job from: the rule every guarded UPDATE is built
from, kept as data so it can be read, and tested, apart from the SQL."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import QueryableAttribute

from store.states import JobState


class Transition(StrEnum):
    """A move of a job from one state to another, named for what causes it."""

    PUBLISH = "publish"  # the relay sent its message → queued
    CLAIM = "claim"  # a worker takes it for an attempt → running
    RELEASE = "release"  # a batch ran out of lease before starting it → queued
    SUCCEED = "succeed"  # → succeeded
    RETRY = "retry"  # → retrying
    FAIL = "fail"  # a permanent error or the last attempt → dead
    CANCEL = "cancel"  # by request, before it starts → cancelled
    REPLAY = "replay"  # a dead job gets more attempts → retrying
    REAP = "reap"  # its worker vanished (lease expired) → retrying, or dead when quarantined


_S = JobState
# `accepted` is claimable: the worker may receive the message before the relay's commit.
ALLOWED_FROM: MappingProxyType[Transition, tuple[JobState, ...]] = MappingProxyType(
    {
        Transition.PUBLISH: (_S.ACCEPTED, _S.RETRYING),
        Transition.CLAIM: (_S.ACCEPTED, _S.QUEUED, _S.RETRYING),
        Transition.RELEASE: (_S.RUNNING,),
        Transition.SUCCEED: (_S.RUNNING,),
        Transition.RETRY: (_S.RUNNING,),
        Transition.FAIL: (_S.RUNNING,),
        Transition.CANCEL: (_S.ACCEPTED, _S.QUEUED, _S.RETRYING),
        Transition.REPLAY: (_S.DEAD,),
        Transition.REAP: (_S.RUNNING,),
    }
)


def state_guard(
    state: ColumnElement[Any] | QueryableAttribute[Any], transition: Transition
) -> ColumnElement[bool]:
    """The WHERE term admitting exactly the states `transition` may start from."""
    sources = ALLOWED_FROM[transition]
    # `=` for a single state, so the hot path's SQL text is what it always was.
    return state == sources[0] if len(sources) == 1 else state.in_(sources)
