"""Limits against real processes: exactly 100 of 1,000 concurrent submissions through two
gunicorn processes pass a limit of 100 a minute; a concurrency slot is freed when a real
worker ends the job, and by the sweeper when the worker died after its commit."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select, update

from jobs import lifecycle
from jobs.spec import JobRequest
from jobs.status import JobStatus
from storage import keys
from storage.apikeys import create_api_key
from storage.models import Job
from workers.sweeper import sweep

pytestmark = pytest.mark.integration

BODY = {"model": "yandexgpt-lite", "messages": [{"role": "user", "content": "Привет"}]}


def limited_key(runtime, limits: list[dict]) -> tuple[str, dict[str, str]]:
    with runtime.sessions() as session:
        key, plaintext = create_api_key(session, "limits-it", limits=limits)
        session.commit()
        return key.id, {"Authorization": f"Bearer {plaintext}"}


def jobs_of(runtime, owner: str) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Job.owner == owner)) or 0


def test_exactly_100_of_1000_concurrent_submissions_pass(api_url, runtime):
    key_id, auth = limited_key(runtime, [{"requests_per_minute": 100}])

    def submit(_: int) -> int:
        return requests.post(f"{api_url}/v1/jobs", json=BODY, headers=auth, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(submit, range(1000)))
    assert statuses.count(202) == 100, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(429) == 900
    assert jobs_of(runtime, key_id) == 100
    cancel_all(runtime, key_id)


def cancel_all(runtime, owner: str) -> None:
    """Cancel the jobs left for the worker and let it drain, so that they do not take the
    emulator's answers (or its injected faults) from the tests that follow."""
    with runtime.sessions() as session:
        ids = session.scalars(select(Job.id).where(Job.owner == owner)).all()
        for job_id in ids:
            lifecycle.cancel(session, job_id)
        session.commit()
    deadline = time.monotonic() + 20
    while runtime.redis.llen("yandexgpt.latest") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # calls in flight at the cancel end; their results are discarded


def conc_slots(runtime, key_id: str) -> int:
    return runtime.redis.zcard(keys.limit_counters(f"key:{key_id}", "conc")[0])


def test_a_slot_is_freed_when_the_job_ends(client, runtime, worker):
    key_id, auth = limited_key(runtime, [{"concurrent_jobs": 1, "tokens_per_day": 10**6}])
    first = client.post("/v1/jobs", json=BODY, headers=auth)
    assert first.status_code == 202
    assert conc_slots(runtime, key_id) == 1
    ended = client.get(f"/v1/jobs/{first.get_json()['id']}?wait=20", headers=auth).get_json()
    assert ended["status"] == JobStatus.SUCCEEDED
    deadline = time.monotonic() + 5
    while conc_slots(runtime, key_id) and time.monotonic() < deadline:
        time.sleep(0.05)  # the settle follows the commit
    assert conc_slots(runtime, key_id) == 0
    day = next(k for k in runtime.redis.scan_iter(f"llmgw:lim:key:{key_id}:tpd:*"))
    assert int(runtime.redis.get(day)) == ended["result"]["usage"]["total_tokens"]
    assert client.post("/v1/jobs", json=BODY, headers=auth).status_code == 202


class Unpublished:
    """A dispatcher whose messages are lost: no worker ever sees the job."""

    def publish(self, job_id: str, queue: str, priority: str) -> None:
        return None


def test_the_sweeper_frees_the_slot_of_a_job_whose_worker_died(client, runtime):
    key_id, auth = limited_key(runtime, [{"concurrent_jobs": 1}])
    submitter = dataclasses.replace(runtime.submitter, dispatcher=Unpublished())
    job_id = submitter.submit(key_id, JobRequest.model_validate(BODY)).job_id
    assert client.post("/v1/jobs", json=BODY, headers=auth).status_code == 429
    with runtime.sessions() as session:  # its worker committed the end and died before settling
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.FAILED))
        session.commit()
    runtime.redis.zadd(keys.LIMIT_PENDING, {job_id: 0})  # as if reserved past the grace
    sweep(runtime.worker_context)
    assert conc_slots(runtime, key_id) == 0
    assert client.post("/v1/jobs", json=BODY, headers=auth).status_code == 202
