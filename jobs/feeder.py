"""The batch feeder: keeps a bounded window of each live batch's lines in flight as jobs.

Chosen over a Celery chord or one message per line: a batch of 100,000 lines would put
100,000 messages (and jobs) on the queues at once, ahead of admission and limits. Instead a
periodic task (beat, and kicked when a batch is created) submits the next lines through the
one submission path, `Submitter.submit`, at priority `batch`, until `window` lines of the
batch are in flight; as lines end the next run refills. A line's submission uses the
Idempotency-Key `batch:<batch>:<line>`, so a feeder that dies between the submit and
recording the line's job id finds the same job again. Admission refusing (429) or the queue
being down stops this batch's feeding for this run; a request refused for good (unknown
model, model not allowed) ends its line as failed with the error.

Each run first reconciles every live batch (outcomes and counts recomputed from the job
rows), expires batches past their window, and finalizes those with no open line. One run at
a time across the cluster (a Redis lock).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs import batches
from jobs.admission import LimitExceeded
from jobs.batches import LIVE, BatchStatus
from jobs.errors import JobError, QueueUnavailable
from jobs.spec import JobRequest
from jobs.status import JobStatus
from jobs.submit import Submitter
from routing.errors import RoutingError
from storage import keys
from storage.models import Batch, BatchLine, utcnow

log = logging.getLogger(__name__)
BATCHES_PER_RUN = 100


@dataclass(frozen=True)
class FeedPolicy:
    window: int = 200  # lines of one batch in flight at once


def feed_batches(
    sessions: sessionmaker[Session], redis: Any, submitter: Submitter, policy: FeedPolicy
) -> int:
    """One feeder run over the live batches; returns how many lines were submitted."""
    if not redis.set(keys.BATCH_FEEDER_LOCK, "1", nx=True, ex=keys.BATCH_FEEDER_LOCK_TTL):
        return 0
    try:
        with sessions() as session:
            live = session.scalars(
                select(Batch.id)
                .where(Batch.status.in_(LIVE))
                .order_by(Batch.created_at)
                .limit(BATCHES_PER_RUN)
            ).all()
        return sum(run_batch(sessions, redis, submitter, policy, batch_id) for batch_id in live)
    finally:
        redis.delete(keys.BATCH_FEEDER_LOCK)


def run_batch(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    policy: FeedPolicy,
    batch_id: str,
) -> int:
    """Reconcile, expire or finalize the batch; else feed it. Returns lines submitted."""
    with sessions() as session:
        batch = session.get_one(Batch, batch_id)
        if batch.status in batches.RUNNING and batch.expires_at <= utcnow():
            batches.expire(sessions, redis, batch_id)
            return 0
        still_open = batches.reconcile(session, batch_id)
        if still_open == 0:
            batches.finalize(session, batch)
        session.commit()
        if still_open == 0 or batch.status != BatchStatus.IN_PROGRESS:
            return 0
        owner = batch.owner
    return feed(sessions, redis, submitter, batch_id, owner, policy.window)


def feed(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    batch_id: str,
    owner: str,
    window: int,
) -> int:
    with sessions() as session:
        in_flight = session.scalar(
            select(func.count())
            .select_from(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.job_id.is_not(None))
            .where(BatchLine.outcome.is_(None))
        )
        room = window - int(in_flight or 0)
        if room <= 0:
            return 0
        waiting = session.execute(
            select(BatchLine.line, BatchLine.request)
            .where(BatchLine.batch_id == batch_id, BatchLine.job_id.is_(None))
            .where(BatchLine.outcome.is_(None))
            .order_by(BatchLine.line)
            .limit(room)
        ).all()
    fed = 0
    for line, request in waiting:
        if not submit_line(sessions, redis, submitter, batch_id, owner, line, request):
            break
        fed += 1
    return fed


def submit_line(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    batch_id: str,
    owner: str,
    line: int,
    request: dict[str, Any],
) -> bool:
    """Submit one line; False when feeding this batch must stop for this run (limits, the
    queue down, or the batch cancelled meanwhile)."""
    key = f"batch:{batch_id}:{line}"
    try:
        submitted = submitter.submit(owner, JobRequest.model_validate(request), idempotency_key=key)
    except (LimitExceeded, QueueUnavailable) as exc:
        log.info("batch %s paused at line %d: %s", batch_id, line, exc)
        return False
    except (RoutingError, JobError) as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        fail_line(sessions, batch_id, line, str(code), str(exc))
        return True
    return batches.attach_job(sessions, redis, batch_id, line, submitted.job_id)


def fail_line(sessions: sessionmaker[Session], batch_id: str, line: int, code: str, message: str):
    with sessions() as session:
        done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.line == line)
            .where(BatchLine.outcome.is_(None))  # not cancelled meanwhile
            .values(outcome=JobStatus.FAILED, error_code=code[:64], error_message=message)
        )
        if done.rowcount == 1:
            batches.count_outcome(session, batch_id, JobStatus.FAILED, 1)
            batches.complete_if_counted(session, batch_id)
        session.commit()
