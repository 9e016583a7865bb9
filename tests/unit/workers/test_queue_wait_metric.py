"""`llmgw_job_queue_wait_seconds`: a job's first claim observes how long it waited since its
submission; later claims (a retry, a dead worker's job) and jobs never queued do not."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import update

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from llmgw.container import Container
from storage.models import Job, utcnow
from tests.unit.workers.fakes import AnsweringProvider
from workers.service import execute_job

LABELS = {"provider": "yandexgpt", "model": "yandexgpt", "channel": "rc"}


def waits(priority: str) -> tuple[float, float]:
    """(count, sum) of the histogram for the test's route and `priority`."""
    labels = {**LABELS, "priority": priority}
    count = REGISTRY.get_sample_value("llmgw_job_queue_wait_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("llmgw_job_queue_wait_seconds_sum", labels) or 0.0
    return count, total


def submit(runtime: Container, job_id: str, priority: str, waited: float) -> None:
    """A `queued` job submitted `waited` seconds ago."""
    plan = runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}])
    then = utcnow() - timedelta(seconds=waited)
    with runtime.sessions() as session:
        spec = JobSpec.build(request, plan, stream=False)
        lifecycle.create(session, job_id, "owner", plan.primary, spec, priority)
        session.execute(
            update(Job).where(Job.id == job_id).values(created_at=then, updated_at=then)
        )
        session.commit()


def test_the_first_claim_observes_the_wait_since_submission(runtime):
    ctx = dataclasses.replace(runtime.worker_context, providers=lambda name: AnsweringProvider())
    submit(runtime, "w1", "batch", waited=3.0)
    count, total = waits("batch")
    assert execute_job(ctx, "w1").status == "succeeded"
    after_count, after_total = waits("batch")
    assert after_count == count + 1
    assert 3.0 <= after_total - total < 60  # the backdated wait, not the call's time


def test_a_later_claim_does_not_observe_again(runtime):
    ctx = dataclasses.replace(runtime.worker_context, providers=lambda name: AnsweringProvider())
    submit(runtime, "w2", "interactive", waited=1.0)
    with runtime.sessions() as session:  # a first claim already happened (a retry now)
        session.execute(update(Job).where(Job.id == "w2").values(attempt_count=1))
        session.commit()
    count, _ = waits("interactive")
    assert execute_job(ctx, "w2").status == "succeeded"
    assert waits("interactive")[0] == count
