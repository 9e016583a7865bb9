"""The sweeper publishes again only what has no message: running jobs past their lease, and
stale queued jobs beyond what their queue's waiting messages account for."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from storage.models import Job, utcnow
from workers.sweeper import sweep


class Published:
    """The `jobs.dispatch.Dispatcher` port: records the job and, as Celery would, leaves one
    message in the queue's Redis list."""

    def __init__(self, redis) -> None:
        self.redis, self.jobs = redis, []

    def publish(self, job_id: str, queue: str, priority: str = "interactive") -> None:
        self.jobs.append(job_id)
        self.redis.rpush(queue, job_id)


def queued_jobs(runtime, count: int, *, age: timedelta) -> list[str]:
    plan = runtime.resolver.plan("GigaChat")
    request = JobRequest(model="GigaChat", messages=[{"role": "user", "content": "Hi"}])
    spec = JobSpec.build(request, plan, stream=False)
    ids = [f"job{i}" for i in range(count)]
    with runtime.sessions() as session:
        for i, job_id in enumerate(ids):
            lifecycle.create(session, job_id, "master", plan.primary, spec, "interactive")
            session.flush()
            session.get_one(Job, job_id).updated_at = utcnow() - age - timedelta(seconds=i)
        session.commit()
    return ids


def context(runtime):
    return dataclasses.replace(runtime.worker_context, dispatcher=Published(runtime.redis))


def test_a_backlog_with_its_messages_is_left_alone(unit_runtime):
    queued_jobs(unit_runtime, 5, age=timedelta(hours=2))
    for n in range(5):
        unit_runtime.redis.rpush("gigachat.latest", f"message{n}")
    ctx = context(unit_runtime)
    assert sweep(ctx) == 0 and ctx.dispatcher.jobs == []


def test_only_the_missing_messages_are_published_oldest_first(unit_runtime):
    ids = queued_jobs(unit_runtime, 5, age=timedelta(hours=2))
    for n in range(3):
        unit_runtime.redis.rpush("gigachat.latest", f"message{n}")
    ctx = context(unit_runtime)
    assert sweep(ctx) == 2
    assert ctx.dispatcher.jobs == [ids[4], ids[3]]  # the two oldest
    assert sweep(ctx) == 0  # their clocks restarted


def test_a_running_job_past_its_lease_is_published_again(unit_runtime):
    [job_id] = queued_jobs(unit_runtime, 1, age=timedelta(0))
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=45)
        session.get_one(Job, job_id).updated_at = utcnow() - timedelta(seconds=46)
        session.commit()
    ctx = context(unit_runtime)
    assert sweep(ctx) == 1 and ctx.dispatcher.jobs == [job_id]
    with unit_runtime.sessions() as session:
        assert session.get_one(Job, job_id).status == "queued"
