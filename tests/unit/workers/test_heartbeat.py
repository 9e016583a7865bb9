"""The lease keeper renews every held attempt, however many a worker holds."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta

from sqlalchemy import func, select, update

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from storage.models import Job, utcnow
from workers.heartbeat import RENEW_CHUNK, LeaseKeeper

HELD = 1_200  # past SQLite's expression-depth limit of 1,000 for one OR over all of them


def running_jobs(runtime, count: int) -> list[str]:
    plan = runtime.resolver.plan("yandexgpt:rc")
    request = JobRequest(model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}])
    spec = JobSpec.build(request, plan, stream=False)
    ids = [f"lease{i}" for i in range(count)]
    with runtime.sessions() as session:
        for job_id in ids:
            lifecycle.create(session, job_id, "owner", plan.primary, spec, "interactive")
        session.flush()
        for job_id in ids:
            lifecycle.claim(session, job_id, lease_seconds=300)
        stale = utcnow() - timedelta(seconds=100)
        session.execute(update(Job).values(updated_at=stale))
        session.commit()
    return ids


def test_more_held_jobs_than_one_statement_can_name_are_all_renewed(unit_runtime):
    assert HELD > 1_000 > RENEW_CHUNK
    ids = running_jobs(unit_runtime, HELD)
    keeper = LeaseKeeper(unit_runtime.sessions, lease_seconds=300)
    before = utcnow() - timedelta(seconds=10)
    with ExitStack() as stack:
        for job_id in ids[:-1]:
            stack.enter_context(keeper.hold(job_id, 1))
        stack.enter_context(keeper.hold(ids[-1], 2))  # not its current attempt: left alone
        assert keeper.renew() == HELD - 1
    with unit_runtime.sessions() as session:
        fresh = session.scalar(select(func.count()).where(Job.updated_at > before))
        assert fresh == HELD - 1
        assert session.get_one(Job, ids[-1]).updated_at < before
