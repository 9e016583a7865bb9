"""Publishing a job's message: the one place that knows the task's name and the priorities.

The worker registers its task under `RUN_JOB_TASK`; everything that publishes (submission,
fallback, the sweeper) goes through a `Dispatcher`, so none of them needs the Celery app.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from storage import keys

RUN_JOB_TASK = "llmgw.run_job"
FEED_BATCHES_TASK = "llmgw.feed_batches"
DELIVER_CALLBACKS_TASK = "llmgw.deliver_callbacks"
# Redis transport: priority 0 is served first, so batch traffic waits behind every
# interactive message on every queue a worker consumes.
PRIORITIES = {"interactive": 0, "batch": 9}


class Dispatcher(Protocol):
    def publish(
        self,
        job_id: str,
        queue: str,
        priority: str = "interactive",
        countdown: float | None = None,
    ) -> None: ...


class CeleryDispatcher:
    """Publishes through a Celery app's producer pool (`send_task`: no task import needed)."""

    def __init__(self, celery: Any) -> None:
        self.celery = celery

    def publish(
        self,
        job_id: str,
        queue: str,
        priority: str = "interactive",
        countdown: float | None = None,
    ) -> None:
        """`countdown`: seconds before a worker may run it (a retry's backoff)."""
        self.celery.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            queue=queue,
            priority=PRIORITIES[priority],
            countdown=countdown,
        )

    def kick_feeder(self, queue: str, batch_id: str | None = None) -> None:
        """Run the batch feeder now rather than at its next beat: over every live batch (a
        new or cancelled batch), or a refill of one batch whose lines ended."""
        kwargs = {"batch_id": batch_id} if batch_id else {}
        self.celery.send_task(FEED_BATCHES_TASK, kwargs=kwargs, queue=queue)

    def kick_callbacks(self, queue: str) -> None:
        """Deliver the due completion callbacks now (a job with one ended)."""
        self.celery.send_task(DELIVER_CALLBACKS_TASK, queue=queue)


def mark_run_here(redis: Any, job_id: str) -> None:
    """The job about to be inserted `queued` will be claimed and run by the API process
    itself, with no message (one inserted already `running` needs no record): recorded
    first, so that if that process dies before its claim the sweeper publishes it
    (`abandoned_run_here`) a lease later instead of after `requeue_after_seconds`."""
    redis.zadd(keys.INLINE_JOBS, {job_id: time.time()})


def abandoned_run_here(redis: Any, older_than_seconds: float) -> list[str]:
    """Take (and drop) the entries older than the lease: the caller publishes those whose
    job is still `queued`; the others were claimed, or never inserted."""
    cutoff = time.time() - older_than_seconds
    pipe = redis.pipeline(transaction=True)
    pipe.zrangebyscore(keys.INLINE_JOBS, "-inf", cutoff)
    pipe.zremrangebyscore(keys.INLINE_JOBS, "-inf", cutoff)
    found, _ = pipe.execute()
    return [j.decode() if isinstance(j, bytes) else j for j in found]
