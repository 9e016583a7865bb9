"""The periodic sweeper: no job is ever lost.

Also erases the prompts and results of jobs finished longer ago than the retention period.
A job `queued` with no progress past `requeue_after_seconds` (its message was lost, or the
API died between commit and publish) is published again; a job `running` past
`lease_seconds` (its worker died mid-call and the message is not coming back soon) is
published again too. The re-queue is one conditional UPDATE that re-checks the staleness
(`jobs.lifecycle.requeue_stale`), so a job a live worker has just claimed is left alone, and
claims are atomic, so a duplicate message is harmless.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, select

from jobs import lifecycle
from jobs.admission import settle_ended
from jobs.status import JobStatus
from storage import keys
from storage.models import Job, utcnow
from workers.context import WorkerContext

log = logging.getLogger(__name__)
BATCH = 500


def sweep(ctx: WorkerContext) -> int:
    """Re-dispatch stranded jobs; one sweeper at a time across the cluster. Returns the count."""
    if not ctx.redis.set(keys.SWEEPER_LOCK, "1", nx=True, ex=60):
        return 0
    try:
        with ctx.sessions() as session:
            cutoff = utcnow() - timedelta(days=ctx.sweep.retention_days)
            lifecycle.expire_results(session, cutoff, BATCH)
            session.commit()
        requeued = requeue_stranded(ctx)
        settle_ended(ctx.sessions, ctx.redis, BATCH)  # limits of jobs whose worker died
        if requeued:
            log.warning("sweeper re-dispatched %d stranded jobs", requeued)
        return requeued
    finally:
        ctx.redis.delete(keys.SWEEPER_LOCK)


def requeue_stranded(ctx: WorkerContext) -> int:
    now = utcnow()
    queued_before = now - timedelta(seconds=ctx.sweep.requeue_after_seconds)
    running_before = now - timedelta(seconds=ctx.sweep.lease_seconds)
    stranded = or_(
        and_(Job.status == JobStatus.QUEUED, Job.updated_at < queued_before),
        and_(Job.status == JobStatus.RUNNING, Job.updated_at < running_before),
    )
    count = 0
    with ctx.sessions() as session:
        rows = session.execute(
            select(Job.id, Job.queue, Job.priority).where(stranded).limit(BATCH)
        ).all()
        for job_id, queue, priority in rows:
            if lifecycle.requeue_stale(session, job_id, queued_before, running_before):
                session.commit()
                ctx.dispatcher.publish(job_id, queue, priority)
                count += 1
    return count
