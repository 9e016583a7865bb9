"""The batch feeder: keeps a bounded window of each live batch's lines in flight as jobs.

Chosen over a Celery chord or one message per line: a batch of 100,000 lines would put
100,000 messages (and jobs) on the queues at once, ahead of admission and limits. Instead the
feeder submits the next lines through the one submission path, `Submitter.submit`, at
priority `batch`, until `window` lines of the batch are in flight. A line's submission uses
the Idempotency-Key `batch:<batch>:<line>`, so a feeder that dies between the submit and
recording the line's job id finds the same job again. Admission refusing (429) or the queue
being down stops this batch's feeding for this run; a request refused for good (unknown
model, model not allowed) ends its line as failed with the error. Across all batches, at most
`max_in_flight` batch jobs are queued or running at once (below a worker's threads: an
interactive job never waits for a thread a batch line holds); a batch held back by that cap
is fed when its own lines end, or by the beat's next run.

Two kinds of run, each under the batch's own lock (`keys.batch_feeder_lock`):
- the beat's (`feed_batches`, every few seconds, and kicked when a batch is created or
  cancelled): every live batch is reconciled (outcomes and counts recomputed from the job
  rows), expired past its window, finalized with no open line, else fed;
- a refill (`refill_batch`), kicked as the batch's lines end (`request_refill`, called by the
  worker after a line's terminal transition): it only feeds, so the window is topped up within
  milliseconds instead of at the next beat. Kicks are debounced by a short-lived key
  (`keys.batch_kick`, set NX): whoever sets it sends the one task; the refill deletes it as it
  starts a round and runs another round while a new kick arrived meanwhile (a kick whose task
  found the lock taken is served by the holder's next round). A lost kick only delays the
  refill to the beat, which stays the safety net.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs import batches
from jobs.admission import LimitExceeded
from jobs.batches import LIVE, BatchStatus
from jobs.errors import IdempotencyKeyInUse, JobError, QueueUnavailable
from jobs.spec import JobRequest
from jobs.status import ACTIVE, JobStatus
from jobs.submit import Submitter
from routing.errors import RoutingError
from storage import keys
from storage.models import Batch, BatchLine, Job, utcnow

log = logging.getLogger(__name__)
BATCHES_PER_RUN = 100
REFILL_ROUNDS = 20  # per kicked task (and REFILL_SECONDS); the next line to end kicks again
REFILL_SECONDS = 5.0
# One round submits for this long at most, well inside the lock's TTL: a run that outlived
# its lock would feed beside another.
ROUND_SECONDS = 8.0
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@dataclass(frozen=True)
class FeedPolicy:
    window: int = 200  # lines of one batch in flight at once
    # Batch lines in flight (jobs `queued` or `running`) across ALL batches; below a worker's
    # threads, so batch lines can never hold every thread and an interactive job always finds
    # one free (docs/batches.md, "Interactive work first"). None: no cap.
    max_in_flight: int | None = None


Kick = Callable[[str], None]  # sends the feeder task for one batch


def feed_batches(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    policy: FeedPolicy,
    kick: Kick | None = None,
) -> int:
    """The beat's run over the live batches; returns how many lines were submitted."""
    with sessions() as session:
        live = session.scalars(
            select(Batch.id)
            .where(Batch.status.in_(LIVE))
            .order_by(Batch.created_at)
            .limit(BATCHES_PER_RUN)
        ).all()
    fed = 0
    for batch_id in live:
        run = partial(run_batch, sessions, redis, submitter, policy, batch_id)
        ran = locked(redis, batch_id, run) or 0
        fed += ran
        if ran or redis.exists(keys.batch_kick(batch_id)):  # room freed or kicks meanwhile
            fed += refill_batch(sessions, redis, submitter, policy, batch_id, kick)
    return fed


def request_refill(redis: Any, batch_id: str, kick: Kick) -> bool:
    """A line of the batch ended: ask for a refill unless one is already asked for."""
    key = keys.batch_kick(batch_id)
    if not redis.set(key, "1", nx=True, ex=keys.BATCH_KICK_TTL):
        return False
    try:
        kick(batch_id)
    except Exception:
        redis.delete(key)  # not sent: the next line to end asks again
        raise
    return True


def refill_batch(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    policy: FeedPolicy,
    batch_id: str,
    kick: Kick | None = None,
) -> int:
    """A kicked run: top the batch's window up, round after round while a round fed lines
    or a kick arrived; returns the lines submitted.

    Another round after one that fed lines: a line's job can end before the feeder records
    it on its line (the worker's hook then finds no line and kicks nothing), and its room
    must not wait for the beat. The kick is looked at after the lock is released: one set
    before that is served by another round here, one set after it finds the lock free. Past
    the bound (rounds, time) a fresh task takes over rather than this one holding its thread."""
    fed = 0
    until = time.monotonic() + REFILL_SECONDS
    for _ in range(REFILL_ROUNDS):
        ran = locked(
            redis, batch_id, partial(refill_round, sessions, redis, submitter, policy, batch_id)
        )
        if ran is None:  # another run holds the lock and will see the kick
            return fed
        fed += ran
        if not ran and not redis.exists(keys.batch_kick(batch_id)):
            return fed
        if time.monotonic() > until:
            break
    if kick is not None:
        redis.delete(keys.batch_kick(batch_id))
        request_refill(redis, batch_id, kick)
    return fed


def refill_round(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    policy: FeedPolicy,
    batch_id: str,
) -> int:
    redis.delete(keys.batch_kick(batch_id))
    with sessions() as session:
        batch = session.get(Batch, batch_id)
        if batch is None or batch.status != BatchStatus.IN_PROGRESS:
            return 0
        owner, expires_at = batch.owner, batch.expires_at
    if expires_at <= utcnow():
        batches.expire(sessions, redis, batch_id)
        return 0
    return feed(sessions, redis, submitter, batch_id, owner, policy)


def locked(redis: Any, batch_id: str, run: Callable[[], int]) -> int | None:
    """`run()` under the batch's feeder lock; None if another run holds it."""
    lock, token = keys.batch_feeder_lock(batch_id), uuid.uuid4().hex
    if not redis.set(lock, token, nx=True, ex=keys.BATCH_FEEDER_LOCK_TTL):
        return None
    try:
        return run()
    finally:
        redis.eval(RELEASE, 1, lock, token)  # only our own lock, not a successor's


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
    return feed(sessions, redis, submitter, batch_id, owner, policy)


def feed(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    batch_id: str,
    owner: str,
    policy: FeedPolicy,
) -> int:
    with sessions() as session:
        in_flight = session.scalar(
            select(func.count())
            .select_from(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.job_id.is_not(None))
            .where(BatchLine.outcome.is_(None))
        )
        room = policy.window - int(in_flight or 0)
        if policy.max_in_flight is not None:
            room = min(room, policy.max_in_flight - batch_jobs_in_flight(session))
        if room <= 0:
            return 0
        waiting = session.execute(
            select(BatchLine.line, BatchLine.request)
            .where(BatchLine.batch_id == batch_id, BatchLine.job_id.is_(None))
            .where(BatchLine.outcome.is_(None))
            .order_by(BatchLine.line)
            .limit(room)
        ).all()
    fed, until = 0, time.monotonic() + ROUND_SECONDS
    for line, request in waiting:
        if time.monotonic() > until:
            break
        done = submit_line(sessions, redis, submitter, batch_id, owner, line, request)
        if done is None:
            break
        fed += done
    return fed


def batch_jobs_in_flight(session: Session) -> int:
    """Batch jobs queued or running, of every batch: each may hold a worker thread (the
    status index bounds the scan to the active jobs)."""
    count = session.scalar(
        select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE), Job.priority == "batch")
    )
    return int(count or 0)


def submit_line(
    sessions: sessionmaker[Session],
    redis: Any,
    submitter: Submitter,
    batch_id: str,
    owner: str,
    line: int,
    request: dict[str, Any],
) -> int | None:
    """Submit one line: 1 when it was fed (or ended, refused for good), 0 when it waits for
    a later run, None when feeding this batch must stop for this run (limits, the queue
    down, or the batch cancelled meanwhile).

    A line whose Idempotency-Key is held by a submission that never finished (a feeder
    killed inside `submit`) waits: the key is taken over once its grace has passed
    (`idempotency_grace_seconds`), and the line must not fail for it."""
    key = f"batch:{batch_id}:{line}"
    try:
        submitted = submitter.submit(owner, JobRequest.model_validate(request), idempotency_key=key)
    except (LimitExceeded, QueueUnavailable) as exc:
        log.info("batch %s paused at line %d: %s", batch_id, line, exc)
        return None
    except IdempotencyKeyInUse:
        log.info("batch %s line %d: its submission is held by another; later", batch_id, line)
        return 0
    except (RoutingError, JobError) as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        fail_line(sessions, batch_id, line, str(code), str(exc))
        return 1
    return 1 if batches.attach_job(sessions, redis, batch_id, line, submitted.job_id) else None


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
