"""Each transition is one conditional UPDATE: it happens from the state it leaves, once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from jobs.status import JobStatus
from storage.models import Job, utcnow


@pytest.fixture()
def plan(unit_runtime):
    return unit_runtime.resolver.plan("yandexgpt:rc")


@pytest.fixture()
def job_id(unit_runtime, plan):
    request = JobRequest(model="yandexgpt:rc", messages=[{"role": "user", "content": "Hi"}])
    spec = JobSpec.build(request, plan, stream=False)
    with unit_runtime.sessions() as session:
        lifecycle.create(session, "j1", "owner", plan.primary, spec, "batch")
        session.commit()
    return "j1"


def status(runtime, job_id: str) -> str:
    with runtime.sessions() as session:
        return session.get_one(Job, job_id).status


def test_create_writes_a_queued_job_with_its_priority_column(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        job = session.get_one(Job, job_id)
        assert (job.status, job.priority, job.attempt_count) == ("queued", "batch", 0)
        assert (job.model_requested, job.queue) == ("yandexgpt:rc", "yandexgpt.rc")
        assert "priority" not in job.request


def test_claim_once_then_nobody_else(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        first = lifecycle.claim(session, job_id, lease_seconds=300)
        second = lifecycle.claim(session, job_id, lease_seconds=300)
        session.commit()
    assert first is not None and first.number == 1 and first.priority == "batch"
    assert first.spec.messages[0].content == "Hi"
    assert second is None
    assert status(unit_runtime, job_id) == JobStatus.RUNNING


def test_a_running_job_past_its_lease_is_claimed_again(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        session.get_one(Job, job_id).updated_at = utcnow() - timedelta(seconds=301)
        session.commit()
        again = lifecycle.claim(session, job_id, lease_seconds=300)
        session.commit()
    assert again is not None and again.number == 2


def test_only_the_current_attempt_may_finish(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert not lifecycle.finish(session, job_id, 7, JobStatus.SUCCEEDED, result={})
        assert lifecycle.finish(session, job_id, 1, JobStatus.INCOMPLETE, result={"x": 1})
        assert not lifecycle.finish(session, job_id, 1, JobStatus.SUCCEEDED, result={})
        session.commit()
    assert status(unit_runtime, job_id) == JobStatus.INCOMPLETE


def test_cancel_wins_over_a_late_answer(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert lifecycle.cancel(session, job_id)
        assert not lifecycle.finish(session, job_id, 1, JobStatus.SUCCEEDED, result={})
        assert not lifecycle.cancel(session, job_id)
        session.commit()
    assert status(unit_runtime, job_id) == JobStatus.CANCELLED


def test_retry_later_and_move_to_need_the_job_to_be_this_attempts(unit_runtime, job_id, plan):
    target = plan.candidates[1].route
    hop = {"from": "yandexgpt:rc", "to": target.model_id, "reason": "timeout", "at": "t"}
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert lifecycle.retry_later(session, job_id, 1)
        assert not lifecycle.move_to(session, job_id, 1, target, hop, skipped=0)  # queued now
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert lifecycle.move_to(session, job_id, 2, target, hop, skipped=1)
        session.commit()
        job = session.get_one(Job, job_id)
        assert (job.status, job.channel, job.queue) == ("queued", target.channel, target.queue)
        assert job.attempt_count == 3 and job.fallbacks == [hop]


def test_fail_records_the_reason(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert lifecycle.fail(session, job_id, 1, "timeout", "too slow", skipped=2)
        session.commit()
        job = session.get_one(Job, job_id)
        assert (job.status, job.error_code, job.attempt_count) == ("failed", "timeout", 3)
        assert job.finished_at is not None


def test_dispatch_failure_only_fails_a_queued_job(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        assert not lifecycle.fail_dispatch(session, job_id)
        session.commit()
    assert status(unit_runtime, job_id) == JobStatus.RUNNING


def test_requeue_stale_rechecks_the_staleness(unit_runtime, job_id):
    now = utcnow()
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        session.commit()
        # A worker claimed it just now: a sweep that selected it a moment ago must not touch it.
        stale_before = now - timedelta(seconds=60)
        assert not lifecycle.requeue_stale(session, job_id, stale_before, stale_before)
        assert lifecycle.requeue_stale(session, job_id, now, now + timedelta(seconds=1))
        session.commit()
    assert status(unit_runtime, job_id) == JobStatus.QUEUED


def test_expire_results_erases_prompt_and_result_keeps_the_row(unit_runtime, job_id):
    with unit_runtime.sessions() as session:
        lifecycle.claim(session, job_id, lease_seconds=300)
        lifecycle.finish(session, job_id, 1, JobStatus.SUCCEEDED, result={"content": "x"})
        session.get_one(Job, job_id).finished_at = utcnow() - timedelta(days=2)
        session.commit()
        assert lifecycle.expire_results(session, utcnow() - timedelta(days=1), 10) == 1
        session.commit()
        job = session.get_one(Job, job_id, populate_existing=True)
        assert job.result is None and job.result_expired_at is not None
        assert job.request["messages"] == [] and job.request["plan"]["candidates"]
        assert lifecycle.expire_results(session, utcnow(), 10) == 0
