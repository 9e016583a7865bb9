"""`execute_job` with pacing: no free slot means back to the queue, no call, no attempt."""

from __future__ import annotations

import dataclasses

import fakeredis
import pytest
from sqlalchemy import func, select

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from llmgw.container import Container
from providers.base import CompletionResult, Usage
from storage import keys
from storage.models import Attempt, Job
from workers.service import execute_job


class FakeProvider:
    calls = 0

    def complete(self, request):
        FakeProvider.calls += 1
        return CompletionResult("hi", "stop", Usage(1, 1, 2), "v1", request.upstream_model)


@pytest.fixture()
def runtime(unit_settings) -> Container:
    capped = unit_settings.model_copy(
        update={"yandexgpt_max_in_flight": 1, "yandexgpt_folder_id": "b1gfolder"}
    )
    container = Container(capped)
    container.__dict__["redis"] = fakeredis.FakeRedis()
    return container


@pytest.fixture()
def ctx(runtime):
    FakeProvider.calls = 0
    return dataclasses.replace(runtime.worker_context, providers=lambda name: FakeProvider())


@pytest.fixture()
def job_id(runtime):
    plan = runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}])
    with runtime.sessions() as session:
        lifecycle.create(
            session,
            "j1",
            "owner",
            plan.primary,
            JobSpec.build(request, plan, stream=False),
            "batch",
        )
        session.commit()
    return "j1"


def attempts(runtime, job_id) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Attempt.job_id == job_id)) or 0


def test_no_free_slot_puts_the_job_back_without_an_attempt(runtime, ctx, job_id):
    busy = ctx.pacer.acquire("yandexgpt")  # another worker's call holds the only slot
    assert busy is not None

    outcome = execute_job(ctx, job_id)

    assert outcome.status == "queued" and 0.1 <= (outcome.retry_in or 0) <= 0.5
    assert FakeProvider.calls == 0 and attempts(runtime, job_id) == 0
    with runtime.sessions() as session:
        assert session.get_one(Job, job_id).status == "queued"

    busy.release()
    assert execute_job(ctx, job_id).status == "succeeded"
    assert FakeProvider.calls == 1 and attempts(runtime, job_id) == 1
    holders = keys.pacing_holders("yandexgpt", "b1gfolder")
    assert runtime.redis.zcard(holders) == 0  # the call's slot was given back
    ctx.pacer.close()
