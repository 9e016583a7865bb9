"""`execute_job` writes the claim and the call's `started` row in one commit, before the call;
a claim the gate stops (open circuit) commits the claim alone; a re-claim still logs a dead
worker's call as lost."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

from jobs import attempts as attempt_log
from jobs import lifecycle
from jobs.spec import JobRequest, JobSpec
from storage import keys
from storage.models import Job
from tests.unit.workers.fakes import SeeingProvider, attempt_rows
from workers.service import execute_job


@pytest.fixture()
def provider(runtime):
    return SeeingProvider(runtime)


class Published(list):
    """Stands in for the broker: the messages a fallback would publish."""

    def publish(self, job_id: str, queue: str, priority: str) -> None:
        self.append((job_id, queue))


@pytest.fixture()
def ctx(runtime, provider):
    return dataclasses.replace(
        runtime.worker_context, providers=lambda name: provider, dispatcher=Published()
    )


def new_job(runtime, job_id: str = "j1") -> str:
    plan = runtime.resolver.plan("yandexgpt:latest")
    request = JobRequest(model="yandexgpt:latest", messages=[{"role": "user", "content": "Hi"}])
    with runtime.sessions() as session:
        spec = JobSpec.build(request, plan, stream=False)
        lifecycle.create(session, job_id, "owner", plan.primary, spec, "interactive")
        session.commit()
    return job_id


def test_the_claim_and_the_started_row_are_committed_before_the_call(runtime, ctx, provider):
    job_id = new_job(runtime)
    commits: list[int] = []
    event.listen(runtime.engine, "commit", lambda conn: commits.append(1))
    provider.commits = commits  # what had been committed when the call went out

    assert execute_job(ctx, job_id).status == "succeeded"

    assert provider.seen == [("running", [(1, "started")])]
    assert provider.commits_before_call == 1  # claim and started row: one round of commit
    assert attempt_rows(runtime, job_id) == [(1, "succeeded")]


def test_an_open_circuit_commits_the_claim_without_a_started_row(runtime, ctx, provider):
    job_id = new_job(runtime)
    circuit = keys.circuit_id("yandexgpt", "yandexgpt", "latest")
    for _ in range(50):
        runtime.breaker.record_failure(circuit)
    assert not runtime.breaker.allow(circuit)

    assert execute_job(ctx, job_id).status == "queued"  # on to the plan's next candidate

    assert provider.seen == []
    assert attempt_rows(runtime, job_id) == [(1, "skipped")]
    assert [job for job, _ in ctx.dispatcher] == [job_id]


def test_a_reclaim_logs_the_dead_workers_call_as_lost(runtime, ctx, provider):
    job_id = new_job(runtime)
    with runtime.sessions() as session:  # a worker claimed it, logged its call, then died
        claimed = lifecycle.claim(session, job_id, lease_seconds=45)
        assert claimed is not None
        attempt_log.start_call(session, job_id, claimed.number, claimed)
        session.commit()
    expired = dataclasses.replace(ctx, sweep=dataclasses.replace(ctx.sweep, lease_seconds=0))

    assert execute_job(expired, job_id).status == "succeeded"

    assert provider.seen == [("running", [(1, "lost"), (2, "started")])]
    assert attempt_rows(runtime, job_id) == [(1, "lost"), (2, "succeeded")]


def test_no_free_database_connection_puts_the_message_back_without_a_claim(runtime, provider):
    """Thousands of threads on a small pool: the claim waits the pool's timeout, then the task
    goes back with a countdown; nothing is written, so the job is simply claimed later."""
    engine = create_engine(
        runtime.settings.database_url,
        connect_args={"check_same_thread": False},
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.1,
    )
    sessions = sessionmaker(engine, expire_on_commit=False)
    ctx = dataclasses.replace(
        runtime.worker_context, sessions=sessions, providers=lambda name: provider
    )
    job_id = new_job(runtime)
    held = engine.connect()  # every connection of the pool is busy
    try:
        outcome = execute_job(ctx, job_id)
    finally:
        held.close()

    assert outcome.status == "queued" and outcome.retry_in is not None
    assert provider.seen == [] and attempt_rows(runtime, job_id) == []
    with runtime.sessions() as session:
        assert session.get_one(Job, job_id).status == "queued"
    assert execute_job(ctx, job_id).status == "succeeded"  # once a connection is free


def test_a_locked_sqlite_database_puts_the_message_back_without_a_claim(runtime, provider):
    """SQLite's write lock held past the busy timeout by another writer: same as a full pool."""
    engine = create_engine(runtime.settings.database_url, connect_args={"timeout": 0.1})
    sessions = sessionmaker(engine, expire_on_commit=False)
    ctx = dataclasses.replace(
        runtime.worker_context, sessions=sessions, providers=lambda name: provider
    )
    job_id = new_job(runtime)
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    try:
        outcome = execute_job(ctx, job_id)
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert outcome.status == "queued" and outcome.retry_in is not None
    assert provider.seen == [] and attempt_rows(runtime, job_id) == []
    assert execute_job(ctx, job_id).status == "succeeded"


class LockingProvider(SeeingProvider):
    """Answers, but leaves another writer holding SQLite's lock for a moment after it."""

    def complete(self, request):
        other = sqlite3.connect(
            self.runtime.engine.url.database, isolation_level=None, check_same_thread=False
        )
        other.execute("BEGIN IMMEDIATE")

        def release() -> None:
            time.sleep(0.5)
            other.execute("ROLLBACK")
            other.close()

        threading.Thread(target=release).start()
        return super().complete(request)


def test_an_answer_is_recorded_once_the_database_lock_is_released(runtime):
    engine = create_engine(
        runtime.settings.database_url, connect_args={"timeout": 0.1, "check_same_thread": False}
    )
    provider = LockingProvider(runtime)
    ctx = dataclasses.replace(
        runtime.worker_context,
        sessions=sessionmaker(engine, expire_on_commit=False),
        providers=lambda name: provider,
    )
    job_id = new_job(runtime)

    assert execute_job(ctx, job_id).status == "succeeded"  # not lost to `database is locked`
    assert attempt_rows(runtime, job_id) == [(1, "succeeded")]
