"""Batches: creating one from its parsed lines, reading, cancelling, and every write of a
batch's status and counts (the only module that writes `batches.status`).

    in_progress ──(every line ended)──▶ finalizing ──▶ completed
         ├──cancel──▶ cancelling ──(feeder: no line open)──▶ cancelled
         └──(past expires_at)──▶ expired            (validating: the file is checked in the
                                                      request, so a batch starts in_progress)

Lines are fed as ordinary jobs by `jobs.feeder`; a line's end is counted once, by one
conditional UPDATE that sets its `outcome` (`line_ended`, called after a job's terminal
transition), and the feeder's reconciliation recounts from the job rows, so a missed hook
(a job cancelled through `/v1/jobs`, a worker that died after its commit) only delays the
counts. Cancelled lines count neither as completed nor as failed (OpenAI's counts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs import callbacks, events, lifecycle
from jobs.admission import settle_job
from jobs.batch_file import ParsedFile
from jobs.errors import BatchNotCancellable, BatchNotFound, InvalidBatch
from jobs.listing import Page, page_of
from jobs.spec import JobSpec
from jobs.status import ANSWERED, TERMINAL, JobStatus
from storage.models import Batch, BatchLine, Job, utcnow

WINDOWS = {"24h": timedelta(hours=24)}


class BatchStatus(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


RUNNING = (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS)
LIVE = (*RUNNING, BatchStatus.CANCELLING)  # the feeder looks at these
CANCELLED_OUTCOME = "cancelled"


def create_batch(
    sessions: sessionmaker[Session],
    owner: str,
    parsed: ParsedFile,
    *,
    window: str = "24h",
    metadata: dict[str, str] | None = None,
    skip_invalid: bool = False,
    callback_url: str | None = None,
) -> str:
    """Store the batch and its lines (and its callback), `in_progress`; 400 for bad lines
    unless skipped."""
    problems = [p.as_dict() for p in parsed.problems]
    if problems and not skip_invalid:
        raise InvalidBatch(invalid_message(problems), lines=problems[:100])
    if not parsed.lines:
        raise InvalidBatch("The batch has no valid request.", lines=problems[:100])
    batch_id = f"batch_{uuid.uuid4().hex[:26]}"
    now = utcnow()
    with sessions() as session:
        session.add(
            Batch(
                id=batch_id,
                owner=owner,
                status=BatchStatus.IN_PROGRESS,
                completion_window=window,
                total=len(parsed.lines),
                completed=0,
                failed=0,
                invalid_lines=problems,
                batch_metadata=metadata or {},
                created_at=now,
                in_progress_at=now,
                expires_at=now + WINDOWS[window],
            )
        )
        session.flush()
        rows = [
            {"batch_id": batch_id, "line": p.line, "custom_id": p.custom_id, "request": p.request}
            for p in parsed.lines
        ]
        session.execute(insert(BatchLine), rows)
        if callback_url is not None:
            callbacks.register(session, owner, callback_url, batch_id=batch_id)
        session.commit()
    return batch_id


def invalid_message(problems: list[dict[str, Any]]) -> str:
    shown = "; ".join(f"line {p['line']}: {p['problem']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"The batch has {len(problems)} invalid line(s): {shown}{more}"


def load_batch(session: Session, batch_id: str, owner: str | None) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None or (owner is not None and batch.owner != owner):
        raise BatchNotFound(f"No batch with id {batch_id!r}.")
    return batch


def list_batches(session: Session, owner: str | None, after: str | None, limit: int) -> Page:
    query = select(Batch)
    if owner is not None:
        query = query.where(Batch.owner == owner)
    return page_of(session, query, Batch, after, limit)


# -- status transitions ----------------------------------------------------------------------


def transition(session: Session, batch_id: str, leaving: tuple[str, ...], to: BatchStatus) -> bool:
    """One conditional UPDATE: `leaving` → `to`, stamping `<to>_at`."""
    now = utcnow()
    stamps = {f"{to.value}_at": now}
    if to is BatchStatus.COMPLETED:
        stamps["finalizing_at"] = now
    done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_(leaving))
        .values(status=to, **stamps)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def cancel_batch(sessions: sessionmaker[Session], redis: Any, batch_id: str, owner: str | None):
    """Stop feeding and cancel the lines not yet ended; 409 if the batch has ended."""
    with sessions() as session:
        batch = load_batch(session, batch_id, owner)
        if not transition(session, batch_id, RUNNING, BatchStatus.CANCELLING):
            raise BatchNotCancellable(f"The batch has already ended ({batch.status}).")
        session.commit()
    stop_lines(sessions, redis, batch_id)
    # `cancelled` is left to the feeder's next run: it holds the feeder lock, so no line is
    # being submitted while it checks that every line has ended.


def expire(sessions: sessionmaker[Session], redis: Any, batch_id: str) -> None:
    """Past its window: the lines not yet ended are cancelled, the batch `expired`, in one
    transaction, so a client that sees `expired` reads every line in the output or errors."""
    with sessions() as session:
        if not transition(session, batch_id, RUNNING, BatchStatus.EXPIRED):
            return
        refunds = end_open_lines(session, batch_id)
        session.commit()
    for job_id, spec in refunds:
        refund_cancelled(redis, job_id, spec)


def attach_job(sessions: sessionmaker[Session], redis: Any, batch_id: str, line: int, job_id: str):
    """Record the job the feeder submitted for a line. False if the line was cancelled
    meanwhile (the batch was cancelled or expired while it was being fed): the job is then
    cancelled too, in the same transaction, and the line ends as its job did (it may have
    answered already)."""
    with sessions() as session:
        done: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.line == line)
            .where(BatchLine.job_id.is_(None), BatchLine.outcome.is_(None))
            .values(job_id=job_id)
        )
        attached = done.rowcount == 1
        spec = None
        if not attached and recorded_job(session, batch_id, line) == job_id:
            return True  # this very job, recorded by an earlier run: nothing to undo
        if attached:  # a job may end before its line knows it: the job-end hook found no line
            status = session.scalar(select(Job.status).where(Job.id == job_id))
            if status in TERMINAL:
                line_ended(session, job_id, status)
        else:
            session.execute(
                update(BatchLine)
                .where(BatchLine.batch_id == batch_id, BatchLine.line == line)
                .values(job_id=job_id, outcome=None)
            )
            spec = end_line_job(session, job_id)
        session.commit()
    if spec is not None:
        refund_cancelled(redis, job_id, spec)
    return attached


def recorded_job(session: Session, batch_id: str, line: int) -> str | None:
    where = (BatchLine.batch_id == batch_id, BatchLine.line == line)
    return session.scalar(select(BatchLine.job_id).where(*where))


def stop_lines(sessions: sessionmaker[Session], redis: Any, batch_id: str) -> None:
    """Cancel every active job of the batch and mark the lines never fed as cancelled."""
    with sessions() as session:
        refunds = end_open_lines(session, batch_id)
        session.commit()
    for job_id, spec in refunds:
        refund_cancelled(redis, job_id, spec)


def end_open_lines(session: Session, batch_id: str) -> list[tuple[str, JobSpec]]:
    """End every line not yet ended: the unfed ones `cancelled`, the fed ones as their jobs
    end (cancelled here when still active). The caller commits, then refunds what this
    returns."""
    session.execute(
        update(BatchLine)
        .where(BatchLine.batch_id == batch_id, BatchLine.job_id.is_(None))
        .where(BatchLine.outcome.is_(None))
        .values(outcome=CANCELLED_OUTCOME)
    )
    open_jobs = session.scalars(
        select(BatchLine.job_id).where(
            BatchLine.batch_id == batch_id,
            BatchLine.outcome.is_(None),
            BatchLine.job_id.is_not(None),
        )
    ).all()
    refunds = []
    for job_id in open_jobs:
        assert job_id is not None
        spec = end_line_job(session, job_id)
        if spec is not None:
            refunds.append((job_id, spec))
    return refunds


def end_line_job(session: Session, job_id: str) -> JobSpec | None:
    """Cancel a line's job and end the line as its job ended (cancelled, or how it ended
    meanwhile); the job's spec if this cancelled it (the caller commits, then refunds)."""
    cancelled = lifecycle.cancel(session, job_id)
    job = session.get_one(Job, job_id, populate_existing=True)
    line_ended(session, job_id, job.status)
    return JobSpec.load(job.request) if cancelled else None


def refund_cancelled(redis: Any, job_id: str, spec: JobSpec) -> None:
    settle_job(redis, job_id, spec, 0)
    events.notify_done(redis, job_id, JobStatus.CANCELLED)


# -- counts ----------------------------------------------------------------------------------


def line_ended(session: Session, job_id: str, status: str) -> str | None:
    """A batch line's job ended: set its outcome once and count it (caller commits).
    Returns the line's batch id if this call counted it."""
    row = session.execute(
        update(BatchLine)
        .where(BatchLine.job_id == job_id, BatchLine.outcome.is_(None))
        .values(outcome=status)
        .returning(BatchLine.batch_id)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is not None:
        count_outcome(session, row[0], status, 1)
        complete_if_counted(session, row[0])
        return str(row[0])
    return None


def complete_if_counted(session: Session, batch_id: str) -> None:
    """in_progress → completed once every line is counted (no wait for the feeder's run)."""
    now = utcnow()
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_(RUNNING))
        .where(Batch.completed + Batch.failed >= Batch.total)
        .values(status=BatchStatus.COMPLETED, finalizing_at=now, completed_at=now)
        .execution_options(synchronize_session=False)
    )


def count_outcome(session: Session, batch_id: str, outcome: str, n: int) -> None:
    if outcome in ANSWERED:
        values = {"completed": Batch.completed + n}
    elif outcome == JobStatus.FAILED:
        values = {"failed": Batch.failed + n}
    else:
        return
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def reconcile(session: Session, batch_id: str) -> int:
    """Set the outcome of lines whose job ended unseen, recount from the lines; returns how
    many lines are still open (not ended). The caller commits."""
    ended = session.execute(
        select(BatchLine.line, Job.status)
        .join(Job, Job.id == BatchLine.job_id)
        .where(BatchLine.batch_id == batch_id, BatchLine.outcome.is_(None))
        .where(Job.status.in_(TERMINAL))
    ).all()
    for line, status in ended:
        session.execute(
            update(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.line == line)
            .values(outcome=status)
        )
    counts = dict(
        session.execute(
            select(BatchLine.outcome, func.count())
            .where(BatchLine.batch_id == batch_id)
            .group_by(BatchLine.outcome)
        ).all()
    )
    completed = sum(counts.get(s, 0) for s in ANSWERED)
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(completed=completed, failed=counts.get(JobStatus.FAILED, 0))
        .execution_options(synchronize_session=False)
    )
    return int(counts.get(None, 0))


def finalize(session: Session, batch: Batch) -> None:
    """Every line ended: in_progress → completed, cancelling → cancelled."""
    if batch.status == BatchStatus.CANCELLING:
        transition(session, batch.id, (BatchStatus.CANCELLING,), BatchStatus.CANCELLED)
    else:
        transition(session, batch.id, RUNNING, BatchStatus.COMPLETED)


# -- results ---------------------------------------------------------------------------------


def ended_lines(
    session: Session, batch_id: str, outcomes: tuple[str, ...]
) -> Iterator[tuple[BatchLine, Job | None]]:
    """The batch's ended lines with these outcomes, in line order, with their jobs."""
    query = (
        select(BatchLine, Job)
        .outerjoin(Job, Job.id == BatchLine.job_id)
        .where(BatchLine.batch_id == batch_id, BatchLine.outcome.in_(outcomes))
        .order_by(BatchLine.line)
        .execution_options(yield_per=500)
    )
    for line, job in session.execute(query):  # noqa: UP028 (unpacks the Row for the types)
        yield line, job
