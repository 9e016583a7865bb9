"""Reading, waiting for and cancelling a job, on behalf of its owner (or an admin)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from jobs import events, lifecycle
from jobs.admission import settle_job
from jobs.errors import JobNotCancellable, JobNotFound
from jobs.spec import JobSpec
from jobs.status import JobStatus
from jobs.submit import Submitted, new_job_id
from storage.models import Job


def load_job(session: Session, job_id: str, owner: str | None, *, attempts: bool = False) -> Job:
    """The job, if `owner` may see it (None: an admin, who sees every job); `attempts`:
    with its attempts in the same query (for a reader that uses them)."""
    options = [joinedload(Job.attempts)] if attempts else []
    job = session.get(Job, job_id, options=options)
    if job is None or (owner is not None and job.owner != owner):
        raise JobNotFound(f"No job with id {job_id!r}.")
    return job


def job_status(sessions: sessionmaker[Session], job_id: str, owner: str | None) -> str:
    """The job's status (two columns read, not the row), if `owner` may see it."""
    with sessions() as session:
        row = session.execute(select(Job.status, Job.owner).where(Job.id == job_id)).first()
    if row is None or (owner is not None and row.owner != owner):
        raise JobNotFound(f"No job with id {job_id!r}.")
    return row.status


def wait_for_job(
    sessions: sessionmaker[Session],
    listener: events.DoneListener,
    job_id: str,
    owner: str | None,
    timeout: float,
) -> str:
    """The job's status once it has ended or `timeout` passed (404 if it is not visible: the
    first read, made once registered for its end, checks that)."""
    read = partial(job_status, sessions, job_id, owner)
    return listener.wait(job_id, read, timeout)


def submit_and_wait(
    sessions: sessionmaker[Session],
    listener: events.DoneListener,
    submit: Callable[[str], Submitted],
    owner: str | None,
    timeout: float,
) -> tuple[Submitted, str]:
    """`submit(job_id)` registered for the new job's end before it is published, then its
    status once it has ended or `timeout` passed: the first read of the row is not needed
    (the job is `queued` as registered). An Idempotency-Key replay waits for its job."""
    job_id = new_job_id()
    with listener.watching(job_id) as watch:
        submitted = submit(job_id)
        if submitted.job_id == job_id:
            read = partial(job_status, sessions, job_id, owner)
            return submitted, watch.wait(read, timeout, status=JobStatus.QUEUED)
    return submitted, wait_for_job(sessions, listener, submitted.job_id, owner, timeout)


def cancel_job(sessions: sessionmaker[Session], redis: Any, job_id: str, owner: str | None):
    """Cancel a queued or running job; 409 with its status if it has already ended."""
    with sessions() as session:
        load_job(session, job_id, owner)
        cancelled = lifecycle.cancel(session, job_id)
        session.commit()
        status = session.get_one(Job, job_id, populate_existing=True).status
        spec = JobSpec.load(session.get_one(Job, job_id).request)
    if not cancelled:
        raise JobNotCancellable(f"The job has already ended ({status}).", job_status=status)
    settle_job(redis, job_id, spec, 0)  # a cancel refunds the reservation
    events.notify_done(redis, job_id, JobStatus.CANCELLED)


def read_end(sessions: sessionmaker[Session], job_id: str, owner: str | None):
    """The job's end for a stream reader (`events.ended_row`), None while it runs."""
    with sessions() as session:
        job = load_job(session, job_id, owner)
        return events.ended_row(job.status, job.result, job.error_code, job.error_message)
