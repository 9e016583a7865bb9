"""Celery wrappers only: each task takes ids and calls a plain service function.

`JobTask` is the one base task: it owns the process's `WorkerContext` and binds the job id
into the log context (`workers.logcontext`) for everything logged while the task runs.
"""

from __future__ import annotations

from celery import Celery, Task

from jobs.dispatch import DELIVER_CALLBACKS_TASK, FEED_BATCHES_TASK, RUN_JOB_TASK
from jobs.feeder import feed_batches, refill_batch
from workers.context import WorkerContext
from workers.logcontext import bound_job
from workers.service import execute_job
from workers.sweeper import sweep

SWEEP_TASK = "llmgw.sweep"


class JobTask(Task):
    @property
    def context(self) -> WorkerContext:
        return self.app.llmgw_context()  # type: ignore[attr-defined]


def register_tasks(app: Celery) -> None:
    @app.task(name=RUN_JOB_TASK, bind=True, base=JobTask, max_retries=None)
    def run_job(self: JobTask, job_id: str) -> None:
        with bound_job(job_id):
            outcome = execute_job(self.context, job_id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)

    @app.task(name=SWEEP_TASK, bind=True, base=JobTask, ignore_result=True)
    def sweep_jobs(self: JobTask) -> int:
        return sweep(self.context)

    @app.task(name=FEED_BATCHES_TASK, bind=True, base=JobTask, ignore_result=True)
    def feed(self: JobTask, *, batch_id: str | None = None) -> int:
        ctx = self.context
        assert ctx.submitter is not None, "the worker context has no submitter"
        if batch_id is not None:  # kicked as the batch's lines end
            return refill_batch(
                ctx.sessions, ctx.redis, ctx.submitter, ctx.feed, batch_id, ctx.kick_batch
            )
        return feed_batches(ctx.sessions, ctx.redis, ctx.submitter, ctx.feed, ctx.kick_batch)

    @app.task(name=DELIVER_CALLBACKS_TASK, bind=True, base=JobTask, ignore_result=True)
    def deliver_callbacks(self: JobTask) -> int:
        deliverer = self.context.callbacks
        return deliverer.deliver_due() if deliverer is not None else 0
