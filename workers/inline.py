"""A synchronous request's job run by the API thread that waits for it (`LLMGW_SYNC_INLINE`).

`POST /v1/chat/completions` without `stream` holds its HTTP request open until the job
ends. Queued, that job crosses three processes (API → worker → API: the message, the done
event) for one provider call; run here, the waiting thread does the work the worker would,
with the same function (`workers.service.execute_job`): the same atomic claim, the
`started` attempt row committed before the call goes out, the lease kept while it runs,
pacing, the breaker, the fallback plan, and one terminal transition. Nothing else changes:
the job row, its attempts and its events are the ones a worker would have written.

What the first try cannot finish goes to the queue as it would from a worker: a retry
after its backoff (or a pacing wait) is published with that countdown, and a move to the
next candidate publishes itself (`workers.service.move_on`); the request then waits for
the job as a queued one does. An unexpected error here publishes the job too, so a worker
finishes it; a claim that lost to another runner does nothing. If the API process dies
mid-call, the job is `running` with a lease nobody renews: the sweeper puts it back after
the lease and a worker records the lost call, as for a worker that died. If it dies between
the insert and the claim, the job is `queued` with no message: the submission recorded it in
Redis first (`jobs.dispatch.mark_run_here`), and the sweeper publishes it a lease later.

The composition root hands this to the API as a callable (the API never imports workers/).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from jobs.status import TERMINAL, JobStatus
from storage.models import Job
from workers.context import WorkerContext
from workers.logcontext import bound_job
from workers.service import execute_job

log = logging.getLogger(__name__)


def run_here(ctx: WorkerContext, job_id: str) -> bool:
    """Run the job's first try in this thread; hand what is left to the queue. True when
    the job has ended (committed), so the caller need not wait for it."""
    with bound_job(job_id):
        try:
            outcome = execute_job(ctx, job_id)
        except Exception:
            log.exception("job %s: running it in the API failed; handing it to a worker", job_id)
            to_queue(ctx, job_id, None)
            return False
    if outcome.retry_in is not None:
        to_queue(ctx, job_id, outcome.retry_in)
    return outcome.status in TERMINAL


def to_queue(ctx: WorkerContext, job_id: str, countdown: float | None) -> None:
    """Publish the job on its current queue if it is still waiting for a run."""
    with ctx.sessions() as session:
        row = session.execute(
            select(Job.queue, Job.priority, Job.status).where(Job.id == job_id)
        ).one_or_none()
    if row is not None and row.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        ctx.dispatcher.publish(job_id, row.queue, row.priority, countdown=countdown)
