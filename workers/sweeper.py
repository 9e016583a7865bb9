"""The periodic sweeper: no job is ever lost.

Also erases the prompts and results of jobs finished longer ago than the retention period.
A job an API process inserted to run itself (a sync request's, `workers.inline`) and never
claimed is published a lease later (`jobs.dispatch.abandoned_run_here`). A job `queued`
whose message a dead worker held (prefetched, or waiting out a retry countdown)
is published again as soon as that worker's beat is older than `lease_seconds`
(`workers.held`). A job `queued` with no progress past `requeue_after_seconds` (its message
was lost, or the API died between commit and publish) is published again — only as many per
queue as the queue's waiting messages do not account for, so a backlog is not doubled; a job
`running` past `lease_seconds` (its worker died mid-call and the message is not coming back
soon) is published again too. The re-queue is one conditional UPDATE that re-checks the
staleness (`jobs.lifecycle.requeue_stale`), so a job a live worker has just claimed is left
alone, and claims are atomic, so a duplicate message is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs import lifecycle
from jobs.admission import settle_ended
from jobs.dispatch import abandoned_run_here
from jobs.status import JobStatus
from storage import keys
from storage.models import Job, utcnow
from workers.context import WorkerContext
from workers.held import dead_workers, forget_worker, held_jobs, live_held_jobs
from workers.queues import waiting_messages

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
        requeued = republish_held_by_dead(ctx) + republish_abandoned_here(ctx)
        requeued += requeue_stranded(ctx, after_a_death=bool(ctx.redis.exists(keys.POSTMORTEM)))
        settle_ended(ctx.sessions, ctx.redis, BATCH)  # limits of jobs whose worker died
        if requeued:
            log.warning("sweeper re-dispatched %d stranded jobs", requeued)
        return requeued
    finally:
        ctx.redis.delete(keys.SWEEPER_LOCK)


def republish_held_by_dead(ctx: WorkerContext) -> int:
    """Publish again the still-`queued` jobs whose messages a dead worker held, then forget
    that worker (its `running` jobs come back by their leases)."""
    count = 0
    for worker in dead_workers(ctx.redis, ctx.sweep.lease_seconds):
        published = publish_still_queued(ctx, sorted(held_jobs(ctx.redis, worker)))
        forget_worker(ctx.redis, worker)
        # A message Redis handed to the worker as it died (popped, never received) is in no
        # list and in no record: for a while, stale queued jobs come back after a lease.
        ctx.redis.set(keys.POSTMORTEM, worker, ex=max(1, int(3 * ctx.sweep.lease_seconds)))
        log.warning(
            "worker %s stopped beating; %d of its held jobs published again", worker, published
        )
        count += published
    return count


def republish_abandoned_here(ctx: WorkerContext) -> int:
    """Publish the jobs an API process meant to run itself (`workers.inline`) and that are
    still `queued` a lease later: it died between the insert and its claim."""
    return publish_still_queued(ctx, abandoned_run_here(ctx.redis, ctx.sweep.lease_seconds))


def publish_still_queued(ctx: WorkerContext, job_ids: list[str]) -> int:
    """Publish those of `job_ids` that are still `queued` (the others were claimed, ended or
    never written); a duplicate message is harmless. Returns how many."""
    count = 0
    with ctx.sessions() as session:
        for start in range(0, len(job_ids), BATCH):
            queued = session.execute(
                select(Job.id, Job.queue, Job.priority).where(
                    Job.id.in_(job_ids[start : start + BATCH]), Job.status == JobStatus.QUEUED
                )
            ).all()
            for job_id, queue, priority in queued:
                ctx.dispatcher.publish(job_id, queue, priority)
                count += 1
    return count


def requeue_stranded(ctx: WorkerContext, *, after_a_death: bool = False) -> int:
    """Publish again the running jobs past their lease, and the stale queued jobs whose
    messages are missing: a queue holding at least as many messages as it has queued jobs is
    left alone, so a long backlog never gets a second message per job. `after_a_death`
    (within three leases of a dead worker found): a queued job is stale after a lease, not
    after `requeue_after_seconds`, and the jobs live workers hold are not counted missing."""
    now = utcnow()
    stale_after = ctx.sweep.lease_seconds if after_a_death else ctx.sweep.requeue_after_seconds
    queued_before = now - timedelta(seconds=stale_after)
    running_before = now - timedelta(seconds=ctx.sweep.lease_seconds)
    count = 0
    with ctx.sessions() as session:
        held = live_held_jobs(ctx.redis, ctx.sweep.lease_seconds) if after_a_death else set()
        stranded = stranded_jobs(ctx, session, queued_before, running_before, held)
        for job_id, queue, priority in stranded:
            if lifecycle.requeue_stale(session, job_id, queued_before, running_before):
                session.commit()
                ctx.dispatcher.publish(job_id, queue, priority)
                count += 1
    return count


def stranded_jobs(
    ctx: WorkerContext,
    session: Session,
    queued_before: datetime,
    running_before: datetime,
    held: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[str, str, str]]:
    """(job id, queue, priority): running past the lease, then per queue the oldest stale
    queued jobs beyond what the queue's waiting messages account for, leaving out `held`
    (jobs whose messages live workers hold)."""
    columns = (Job.id, Job.queue, Job.priority)
    running = session.execute(
        select(*columns)
        .where(Job.status == JobStatus.RUNNING, Job.updated_at < running_before)
        .limit(BATCH)
    ).all()
    found = [tuple(row) for row in running]
    queued_per_queue = session.execute(
        select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED).group_by(Job.queue)
    ).all()
    for queue, queued in queued_per_queue:
        missing = queued - waiting_messages(ctx.redis, queue)
        if missing <= 0:
            continue
        stale = session.execute(
            select(*columns)
            .where(Job.status == JobStatus.QUEUED, Job.queue == queue)
            .where(Job.updated_at < queued_before)
            .order_by(Job.updated_at)
            .limit(min(missing + len(held), BATCH))
        ).all()
        found.extend([tuple(row) for row in stale if row[0] not in held][:missing])
    return found  # type: ignore[return-value]
