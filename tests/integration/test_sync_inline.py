"""The synchronous endpoint runs its job in the API thread that waits for it
(`LLMGW_SYNC_INLINE`, `workers/inline.py`): answered with no worker at all and no message
published; what the first try cannot finish (a retry after its backoff) goes to the queue
and a worker ends it; the attempt log is the same as a worker's."""

from __future__ import annotations

import re

import pytest
import redis as redis_lib
import requests
from sqlalchemy import select

from llmgw.app import create_app
from llmgw.container import Container
from storage import keys
from storage.models import Attempt, Job
from tests.integration.conftest import MASTER_KEY
from workers.queues import all_queue_names, priority_lists

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
BODY = {"model": "yandexgpt-lite", "messages": [{"role": "user", "content": "Привет"}]}


def no_worker_stack(settings, **overrides) -> Container:
    """The session's database and emulators, but another Redis database that no worker
    consumes: a job published there would never run."""
    base, db = re.fullmatch(r"(.*/)(\d+)", settings.redis_url).groups()  # type: ignore[union-attr]
    url = f"{base}{(int(db) + 1) % 16}"
    redis_lib.Redis.from_url(url).flushdb()
    return Container(settings.model_copy(update={"redis_url": url, **overrides}))


def messages_waiting(container: Container) -> int:
    names = [n for q in all_queue_names() for n in priority_lists(q)]
    return sum(container.redis.llen(name) for name in names)


def test_a_sync_request_is_answered_with_no_worker_and_nothing_queued(settings):
    container = no_worker_stack(settings, sync_inline=True)
    client = create_app(container=container).test_client()
    response = client.post("/v1/chat/completions", json=BODY, headers=AUTH)
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["choices"][0]["message"]["content"]
    assert response.headers["x-llmgw-attempts"] == "1"
    assert messages_waiting(container) == 0
    with container.sessions() as session:
        job = session.get_one(Job, response.headers["x-llmgw-job-id"])
        outcomes = [a.outcome for a in job.attempts]
    assert (job.status, outcomes) == ("succeeded", ["succeeded"])
    # Inserted already claimed (the call could go at once): no insert-to-claim window to mark.
    assert container.redis.zscore(keys.INLINE_JOBS, job.id) is None


def test_without_inline_the_same_request_waits_for_a_worker(settings):
    """The control: queued, the job needs a worker; there is none, so the wait runs out."""
    container = no_worker_stack(settings, sync_inline=False, sync_timeout_seconds=2)
    client = create_app(container=container).test_client()
    response = client.post("/v1/chat/completions", json=BODY, headers=AUTH)
    assert response.status_code == 504, response.get_json()
    assert messages_waiting(container) == 1


@pytest.fixture()
def yandex_faults(emulators):
    url = emulators["yandexgpt"]
    yield lambda **rule: requests.post(f"{url}/_emulator/faults", json=rule, timeout=5)
    requests.delete(f"{url}/_emulator/faults", timeout=5)


def test_a_retry_goes_to_the_queue_and_a_worker_ends_it(worker, runtime, client, yandex_faults):
    assert runtime.settings.sync_inline
    yandex_faults(kind="http_503", model="yandexgpt-lite", count=1).raise_for_status()
    response = client.post("/v1/chat/completions", json=BODY, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    assert response.headers["x-llmgw-attempts"] == "2"
    with runtime.sessions() as session:
        rows = session.execute(
            select(Attempt.outcome, Attempt.error_reason)
            .where(Attempt.job_id == response.headers["x-llmgw-job-id"])
            .order_by(Attempt.number)
        ).all()
    assert [r.outcome for r in rows] == ["failed", "succeeded"], rows


VOLATILE = ("date", "x-ratelimit-", "x-request-id", "retry-after")


def stable_headers(response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers.items() if not k.lower().startswith(VOLATILE)]


@pytest.mark.parametrize("model", ["yandexgpt-lite", "yandexgpt-lite:deprecated"])
def test_the_inline_answer_is_byte_for_byte_the_read_back_one(settings, model):
    """The run that ended the job answers from what it holds (`jobs.answered`); a replay of
    the same Idempotency-Key answers from the job read back. Body and headers (x-llmgw-*,
    the deprecation headers, warnings, usage, the model version) must not differ."""
    container = no_worker_stack(settings, sync_inline=True)
    client = create_app(container=container).test_client()
    headers = {**AUTH, "Idempotency-Key": f"answer-{model}"}
    body = {**BODY, "model": model}

    first = client.post("/v1/chat/completions", json=body, headers=headers)
    replay = client.post("/v1/chat/completions", json=body, headers=headers)

    assert first.status_code == replay.status_code == 200, first.get_json()
    assert first.headers["x-llmgw-job-id"] == replay.headers["x-llmgw-job-id"]
    assert first.get_data() == replay.get_data()
    assert stable_headers(first) == stable_headers(replay)
    if model.endswith(":deprecated"):
        assert first.headers["Deprecation"] and first.get_json()["warnings"]
