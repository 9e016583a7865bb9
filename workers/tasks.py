"""Celery wrappers only: each task takes ids and calls a plain service function."""

from __future__ import annotations

from celery import Celery, Task

from llmgw.runtime import Runtime
from workers.service import execute_job
from workers.sweeper import sweep


class JobTask(Task):
    """Owns the process runtime (database, Redis, provider clients) shared by all threads."""

    @property
    def runtime(self) -> Runtime:
        return self.app.llmgw_runtime  # type: ignore[attr-defined]


def register_tasks(app: Celery) -> None:
    @app.task(name="llmgw.run_job", bind=True, base=JobTask, max_retries=None)
    def run_job(self: JobTask, job_id: str) -> None:
        outcome = execute_job(self.runtime, job_id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)

    @app.task(name="llmgw.sweep", bind=True, base=JobTask, ignore_result=True)
    def sweep_jobs(self: JobTask) -> int:
        return sweep(self.runtime)
