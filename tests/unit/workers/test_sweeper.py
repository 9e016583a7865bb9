"""The sweeper publishes again only what has no message: running jobs past their lease, queued
jobs whose messages a dead worker held, and stale queued jobs beyond what their queue's waiting
messages account for."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from storage import keys
from storage.models import Job, utcnow
from workers.held import HeldMessages
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


def test_a_dead_workers_held_queued_jobs_are_published_at_once_and_it_is_forgotten(unit_runtime):
    """Fresh jobs (too young for the requeue by age) whose messages a worker held when it
    stopped beating: one message's task had returned, one job is running elsewhere (it comes
    back by its lease); only the queued one with a held message goes out."""
    queued, ended, running = queued_jobs(unit_runtime, 3, age=timedelta(0))
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, running, lease_seconds=45)
        session.commit()
    redis = unit_runtime.redis
    dead = HeldMessages(redis, lease_seconds=45, worker_id="dead")
    live = HeldMessages(redis, lease_seconds=45, worker_id="live")
    for n, job_id in enumerate((queued, ended, running)):
        dead.received(f"task{n}", 0, job_id)
    dead.released("task1", 0)  # its task returned
    live.received("task9", 2, queued)  # a retry of it, taken by a live worker
    redis.zadd(keys.WORKERS, {"dead": time.time() - 46})
    ctx = context(unit_runtime)
    assert sweep(ctx) == 1 and ctx.dispatcher.jobs == [queued]
    assert redis.zrange(keys.WORKERS, 0, -1) == [b"live"]
    assert not redis.exists(keys.worker_held("dead")) and redis.hlen(keys.worker_held("live")) == 1
    assert sweep(ctx) == 0  # forgotten: nothing published twice


def test_a_live_worker_s_held_jobs_are_left_alone(unit_runtime):
    [job_id] = queued_jobs(unit_runtime, 1, age=timedelta(0))
    HeldMessages(unit_runtime.redis, lease_seconds=45, worker_id="w").received("t", 0, job_id)
    ctx = context(unit_runtime)
    assert sweep(ctx) == 0 and ctx.dispatcher.jobs == []


def test_a_job_its_api_meant_to_run_itself_is_published_a_lease_later(unit_runtime):
    """The API process died between inserting its sync job and claiming it: no message
    exists; the sweeper publishes it once the entry is a lease old, and only if queued."""
    from jobs.dispatch import mark_run_here

    abandoned, claimed, young = queued_jobs(unit_runtime, 3, age=timedelta(0))
    redis = unit_runtime.redis
    for job_id in (abandoned, claimed, young):
        mark_run_here(redis, job_id)
    redis.zadd(keys.INLINE_JOBS, {abandoned: time.time() - 46, claimed: time.time() - 46})
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, claimed, lease_seconds=45)
        session.commit()
    ctx = context(unit_runtime)
    assert sweep(ctx) == 1 and ctx.dispatcher.jobs == [abandoned]
    assert [m.decode() for m in redis.zrange(keys.INLINE_JOBS, 0, -1)] == [young]


def test_after_a_worker_death_a_queued_job_without_a_message_comes_back_after_a_lease(
    unit_runtime,
):
    """Redis handed a message to the dying worker's pop: no list, no record holds it. Within
    three leases of the death, stale-by-a-lease queued jobs nobody holds are published."""
    lost, held_by_live = queued_jobs(unit_runtime, 2, age=timedelta(seconds=50))
    redis = unit_runtime.redis
    HeldMessages(redis, lease_seconds=45, worker_id="live").received("t", 0, held_by_live)
    ctx = context(unit_runtime)
    assert sweep(ctx) == 0  # no death seen: 50 s is far below requeue_after_seconds
    HeldMessages(redis, lease_seconds=45, worker_id="dead").received("u", 0, "some-ended-job")
    redis.zadd(keys.WORKERS, {"dead": time.time() - 46})
    assert sweep(ctx) == 1 and ctx.dispatcher.jobs == [lost]
    assert 0 < redis.ttl(keys.POSTMORTEM) <= 135
