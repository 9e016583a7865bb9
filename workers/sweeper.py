"""The periodic sweeper: no job is ever lost.

Also erases the prompts and results of jobs finished longer ago than the retention period.
A job `queued` with no progress past `job_requeue_after_seconds` (its message was lost, or
the API died between commit and publish) is published again; a job `running` past
`job_lease_seconds` (its worker died mid-call and the message is not coming back soon) is
published again too. Claims are atomic, so a duplicate message is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, select

from llmgw.runtime import Runtime
from storage import keys
from storage.models import Job, utcnow
from workers.dispatch import publish_job

log = logging.getLogger(__name__)
BATCH = 500


def find_stranded_jobs(runtime: Runtime) -> list[tuple[str, str, str]]:
    """(job id, queue, priority) of every job that should have moved by now."""
    now, settings = utcnow(), runtime.settings
    queued_before = now - timedelta(seconds=settings.job_requeue_after_seconds)
    running_before = now - timedelta(seconds=settings.job_lease_seconds)
    stranded = or_(
        and_(Job.status == "queued", Job.updated_at < queued_before),
        and_(Job.status == "running", Job.updated_at < running_before),
    )
    with runtime.sessions() as session:
        rows = session.execute(
            select(Job.id, Job.queue, Job.request).where(stranded).limit(BATCH)
        ).all()
    return [
        (job_id, queue, request.get("priority", "interactive")) for job_id, queue, request in rows
    ]


def sweep(runtime: Runtime) -> int:
    """Re-dispatch stranded jobs; one sweeper at a time across the cluster. Returns the count."""
    if not runtime.redis.set(keys.SWEEPER_LOCK, "1", nx=True, ex=60):
        return 0
    try:
        expire_results(runtime)
        stranded = find_stranded_jobs(runtime)
        for job_id, queue, priority in stranded:
            if requeue(runtime, job_id):
                publish_job(runtime.celery, job_id, queue, priority)
        if stranded:
            log.warning("sweeper re-dispatched %d stranded jobs", len(stranded))
        return len(stranded)
    finally:
        runtime.redis.delete(keys.SWEEPER_LOCK)


def requeue(runtime: Runtime, job_id: str) -> bool:
    """Mark the job queued and restart its clock, so the next sweep leaves it alone and the
    new message can claim it; a worker that was merely slow finds it is no longer its own."""
    with runtime.sessions() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ("queued", "running"):
            return False
        job.status, job.updated_at = "queued", utcnow()
        session.commit()
        return True


def expire_results(runtime: Runtime) -> int:
    """Erase prompts and results of jobs finished before the retention period; the rows,
    their usage and their attempt log stay for accounting and version statistics."""
    cutoff = utcnow() - timedelta(days=runtime.settings.job_retention_days)
    with runtime.sessions() as session:
        jobs = session.scalars(
            select(Job)
            .where(Job.finished_at < cutoff, Job.result_expired_at.is_(None))
            .limit(BATCH)
        ).all()
        for job in jobs:
            job.result = None
            job.request = {**job.request, "messages": []}
            job.result_expired_at = utcnow()
        session.commit()
    return len(jobs)
