"""Publishing a job's message: the one place that knows the task name and priorities."""

from __future__ import annotations

from celery import Celery

RUN_JOB_TASK = "llmgw.run_job"
# Redis transport: priority 0 is served first, so batch traffic waits behind every
# interactive message on every queue a worker consumes.
PRIORITIES = {"interactive": 0, "batch": 9}


def publish_job(celery: Celery, job_id: str, queue: str, priority: str = "interactive") -> None:
    celery.send_task(RUN_JOB_TASK, args=[job_id], queue=queue, priority=PRIORITIES[priority])
