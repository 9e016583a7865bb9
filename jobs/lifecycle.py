"""Every transition of a job's status: the only code that writes `jobs.status`.

Each transition is one conditional UPDATE whose WHERE clause is the state it leaves, so two
processes racing for a job (a redelivered message, the sweeper, a cancel) cannot both win:
the loser's UPDATE matches no row and it learns so from the return value. Callers own the
transaction (attempt rows are written in the same one) and commit. A job comes into being
with one INSERT: `create` (queued) or, run at once by its submitting process,
`create_running` (running as attempt 1: the insert is the claim).

    create ─▶ queued ──claim──▶ running ──finish──▶ succeeded | incomplete
                ▲       create_running ─▶ │ ├──retry_later / move_to──▶ queued
                │                         │ └──fail──▶ failed
                └──────requeue_stale──────┘        (cancel: queued | running ──▶ cancelled)

`attempt_count` numbers the job's calls and skips; a worker's claim returns its number, and
every later transition of that worker names it (`running AND attempt_count = number`), so a
worker whose job was re-claimed, cancelled or moved meanwhile changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from jobs.spec import JobSpec
from jobs.status import ACTIVE, JobStatus
from routing.service import Route
from storage.models import Job, utcnow


@dataclass(frozen=True)
class Claimed:
    """A job this worker now runs, as attempt `number`."""

    job_id: str
    number: int
    provider: str
    model: str
    channel: str
    upstream_id: str
    priority: str
    spec: JobSpec
    # When a `queued` job was last put in its queue (`peek`: its `updated_at`); None for a
    # job claimed otherwise (running past its lease, or inserted already running).
    queued_since: datetime | None = field(default=None, kw_only=True)
    # When the job was inserted, for one inserted already running (`create_running`): what
    # its sync answer shows as `created` without reading the row back (`jobs.answered`).
    created_at: datetime | None = field(default=None, kw_only=True)


def create(
    session: Session, job_id: str, owner: str, route: Route, spec: JobSpec, priority: str
) -> None:
    """Write a new job, `queued` on `route`'s queue (the caller publishes after commit)."""
    row = _new_job(job_id, owner, route, spec, priority, utcnow())
    session.execute(_INSERT, row | {"status": JobStatus.QUEUED, "attempt_count": 0})


def create_running(
    session: Session, job_id: str, owner: str, route: Route, spec: JobSpec, priority: str
) -> Claimed:
    """— → running as attempt 1 on `route`, leased from now: a job its submitting process
    runs at once (the sync endpoint's inline run), so the insert is also the claim. The
    caller writes the call's `started` row in the same transaction; if the process dies
    after the commit, the lease runs out and the sweeper puts the job back like a dead
    worker's (`requeue_stale`)."""
    now = utcnow()
    row = _new_job(job_id, owner, route, spec, priority, now)
    session.execute(
        _INSERT, row | {"status": JobStatus.RUNNING, "attempt_count": 1, "started_at": now}
    )
    return Claimed(
        job_id,
        1,
        route.provider,
        route.model,
        route.channel,
        route.upstream_id,
        priority,
        spec,
        created_at=now,
    )


def _new_job(
    job_id: str, owner: str, route: Route, spec: JobSpec, priority: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": job_id,
        "owner": owner,
        "priority": priority,
        "model_requested": spec.model,
        "provider": route.provider,
        "model": route.model,
        "channel": route.channel,
        "upstream_id": route.upstream_id,
        "queue": route.queue,
        "request": spec.dump(),
        "created_at": now,
        "updated_at": now,
    }


def claim(session: Session, job_id: str, lease_seconds: float) -> Claimed | None:
    """queued (or running past its lease: its worker died) → running, as the next attempt."""
    now = utcnow()
    lease_expired = now - timedelta(seconds=lease_seconds)
    claimable = or_(
        Job.status == JobStatus.QUEUED,
        and_(Job.status == JobStatus.RUNNING, Job.updated_at < lease_expired),
    )
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable)
        .values(
            status=JobStatus.RUNNING,
            attempt_count=Job.attempt_count + 1,
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
        .returning(
            Job.attempt_count,
            Job.provider,
            Job.model,
            Job.channel,
            Job.upstream_id,
            Job.priority,
            Job.request,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return None
    spec = JobSpec.load(row.request)
    return Claimed(job_id, row[0], row[1], row[2], row[3], row[4], row[5], spec)


# The worker's claim in two steps, as Core statements built once (no ORM bulk-update
# compilation per job): `peek` reads the job without taking SQLite's write lock, so the
# worker can ask Redis what it needs (the route now, the circuit, a pacing slot) before it
# writes; `claim_seen` then claims it only if it is still as read.
JOBS: Table = Job.__table__  # type: ignore[assignment]
_C = JOBS.c
# The submission's insert, built once (an ORM `insert().values(...)` per job was compiled
# each time: ~7 % of a sync request's API samples).
_INSERT = insert(JOBS)
_PEEK = select(
    _C.status,
    _C.updated_at,
    _C.attempt_count,
    _C.provider,
    _C.model,
    _C.channel,
    _C.upstream_id,
    _C.priority,
    _C.request,
).where(_C.id == bindparam("b_id"))
_NOW = bindparam("b_now", type_=_C.updated_at.type)
_CLAIM_SEEN = (
    update(JOBS)
    .where(
        _C.id == bindparam("b_id"),
        _C.attempt_count == bindparam("b_count"),
        _C.provider == bindparam("b_provider"),
        _C.model == bindparam("b_model"),
        _C.channel == bindparam("b_channel"),
        or_(
            _C.status == JobStatus.QUEUED,
            and_(
                _C.status == JobStatus.RUNNING,
                _C.updated_at < bindparam("b_expired", type_=_C.updated_at.type),
            ),
        ),
    )
    .values(
        status=JobStatus.RUNNING,
        attempt_count=_C.attempt_count + 1,
        upstream_id=bindparam("b_upstream"),
        started_at=func.coalesce(_C.started_at, _NOW),
        updated_at=_NOW,
    )
)


def peek(session: Session, job_id: str, lease_seconds: float) -> Claimed | None:
    """The job as `claim` would take it now (number = its next attempt), or None if it is not
    claimable. Writes nothing and takes no lock: `claim_seen` makes it so, or learns it lost."""
    row = session.execute(_PEEK, {"b_id": job_id}).one_or_none()
    if row is None:
        return None
    lease_expired = utcnow() - timedelta(seconds=lease_seconds)
    running_lapsed = row.status == JobStatus.RUNNING and row.updated_at < lease_expired
    if row.status != JobStatus.QUEUED and not running_lapsed:
        return None
    spec = JobSpec.load(row.request)
    return Claimed(
        job_id,
        row.attempt_count + 1,
        row.provider,
        row.model,
        row.channel,
        row.upstream_id,
        row.priority,
        spec,
        queued_since=row.updated_at if row.status == JobStatus.QUEUED else None,
    )


def claim_seen(session: Session, seen: Claimed, lease_seconds: float, upstream_id: str) -> bool:
    """queued (or running past its lease) → running as attempt `seen.number`, calling
    `upstream_id`, if the job is still as `peek` read it (no claim, move or re-route since).
    False: someone else moved it first; nothing was written."""
    now = utcnow()
    done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        _CLAIM_SEEN,
        {
            "b_id": seen.job_id,
            "b_count": seen.number - 1,
            "b_provider": seen.provider,
            "b_model": seen.model,
            "b_channel": seen.channel,
            "b_expired": now - timedelta(seconds=lease_seconds),
            "b_upstream": upstream_id,
            "b_now": now,
        },
    )
    return done.rowcount == 1


def finish(session: Session, job_id: str, number: int, status: JobStatus, **result: Any) -> bool:
    """running → succeeded | incomplete, with the result and its token counts."""
    assert status in (JobStatus.SUCCEEDED, JobStatus.INCOMPLETE)
    now = utcnow()
    return _update(
        session, _ours(job_id, number), status=status, finished_at=now, updated_at=now, **result
    )


def retry_later(session: Session, job_id: str, number: int) -> bool:
    """running → queued on the same route; the worker's task retries it with a countdown."""
    return _update(session, _ours(job_id, number), status=JobStatus.QUEUED, updated_at=utcnow())


def move_to(
    session: Session, job_id: str, number: int, route: Route, hop: dict[str, Any], *, skipped: int
) -> bool:
    """running → queued on the plan's next candidate; `hop` joins the job's fallbacks. The
    `skipped` candidates passed over on the way were logged as attempts after `number`."""
    fallbacks = session.scalar(select(Job.fallbacks).where(Job.id == job_id)) or []
    return _update(
        session,
        _ours(job_id, number),
        status=JobStatus.QUEUED,
        provider=route.provider,
        model=route.model,
        channel=route.channel,
        upstream_id=route.upstream_id,
        queue=route.queue,
        attempt_count=number + skipped,
        fallbacks=[*fallbacks, hop],
        updated_at=utcnow(),
    )


def fail(
    session: Session,
    job_id: str,
    number: int,
    code: str,
    message: str,
    *,
    skipped: int = 0,
    retry_after: int | None = None,
) -> bool:
    """running (this attempt) → failed; `skipped` candidates were logged after `number`;
    `retry_after`: the provider's Retry-After when the last error was a rate limit."""
    values = _failed(code, message) | {
        "attempt_count": number + skipped,
        "error_retry_after": retry_after,
    }
    return _update(session, _ours(job_id, number), **values)


def fail_dispatch(session: Session, job_id: str) -> bool:
    """queued → failed: the message could not be published (the broker is down)."""
    where = and_(Job.id == job_id, Job.status == JobStatus.QUEUED)
    return _update(session, where, **_failed("dispatch_failed", "The job could not be queued."))


def record_sync(
    session: Session,
    job_id: str,
    owner: str,
    route: Route,
    spec: JobSpec,
    *,
    started_at: datetime,
    attempts: int,
    prompt_tokens: int = 0,
    error: tuple[str, str] | None = None,
) -> None:
    """— → succeeded | failed in one insert: a call the API made itself and has finished
    (`/v1/embeddings`), written afterwards so usage and the job listing count it like a
    job; `error` is (code, message). It never was queued, so no worker or sweeper sees it."""
    now = utcnow()
    outcome = _failed(*error) if error else {"status": JobStatus.SUCCEEDED, "finished_at": now}
    session.execute(
        insert(Job).values(
            id=job_id,
            owner=owner,
            priority="interactive",
            model_requested=spec.model,
            provider=route.provider,
            model=route.model,
            channel=route.channel,
            upstream_id=route.upstream_id,
            queue=route.queue,
            request=spec.dump(),
            attempt_count=attempts,
            prompt_tokens=prompt_tokens,
            completion_tokens=0,
            total_tokens=prompt_tokens,
            created_at=started_at,
            started_at=started_at,
            **(outcome | {"updated_at": now}),
        )
    )


def cancel(session: Session, job_id: str) -> bool:
    """queued | running → cancelled; a call in flight is logged, its result dropped."""
    now = utcnow()
    where = and_(Job.id == job_id, Job.status.in_(ACTIVE))
    return _update(session, where, status=JobStatus.CANCELLED, finished_at=now, updated_at=now)


def requeue_stale(
    session: Session, job_id: str, queued_before: datetime, running_before: datetime
) -> bool:
    """A job stranded as queued or running (still stale: re-checked in the same UPDATE) →
    queued with its clock restarted, so the next sweep leaves it alone and a worker that was
    merely slow finds it is no longer its own."""
    stale = or_(
        and_(Job.status == JobStatus.QUEUED, Job.updated_at < queued_before),
        and_(Job.status == JobStatus.RUNNING, Job.updated_at < running_before),
    )
    return _update(
        session, and_(Job.id == job_id, stale), status=JobStatus.QUEUED, updated_at=utcnow()
    )


def expire_results(session: Session, finished_before: datetime, limit: int) -> int:
    """Erase the prompts and results of jobs finished before the cutoff; the rows, their
    usage and their attempt log stay (accounting, version statistics)."""
    rows = session.execute(
        select(Job.id, Job.request)
        .where(Job.finished_at < finished_before, Job.result_expired_at.is_(None))
        .limit(limit)
    ).all()
    now = utcnow()
    for job_id, request in rows:
        erased = JobSpec.load(request).erased()
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(result=None, request=erased, result_expired_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(rows)


def _ours(job_id: str, number: int) -> ColumnElement[bool]:
    """The job is still running this very attempt (not cancelled, re-claimed or moved)."""
    return and_(_C.id == job_id, _C.status == JobStatus.RUNNING, _C.attempt_count == number)


def _failed(code: str, message: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "status": JobStatus.FAILED,
        "error_code": code,
        "error_message": message,
        "finished_at": now,
        "updated_at": now,
    }


def _update(session: Session, where: ColumnElement[bool], **values: Any) -> bool:
    """One conditional UPDATE as a Core statement (no ORM bulk-update compilation per call)."""
    done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(JOBS).where(where).values(**values)
    )
    return done.rowcount == 1
