"""The job pipeline against a real worker process and the emulators, faults flipped at run time."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from jobs.dispatch import CeleryDispatcher
from storage.models import Attempt, Job, utcnow
from workers.sweeper import sweep

pytestmark = pytest.mark.integration
HELLO = [{"role": "user", "content": "Привет"}]


@pytest.fixture()
def yandex(emulators):
    """The YandexGPT emulator's control endpoint; faults and latency reset after each test."""
    url = emulators["yandexgpt"]
    yield url
    requests.delete(f"{url}/_emulator/faults", timeout=5)
    requests.post(f"{url}/_emulator/latency", json={"latency": 0}, timeout=5)


def add_fault(url: str, **rule) -> None:
    response = requests.post(f"{url}/_emulator/faults", json=rule, timeout=5)
    assert response.status_code == 201, response.text


def submit(client, auth, model="yandexgpt-lite:latest", headers=None, **extra):
    body = {"model": model, "messages": HELLO, **extra}
    return client.post("/v1/jobs", json=body, headers={**auth, **(headers or {})})


def finished(client, auth, job_id: str, timeout: float = 30) -> dict:
    response = client.get(f"/v1/jobs/{job_id}?wait={timeout}", headers=auth)
    job = response.get_json()
    assert job["status"] not in ("queued", "running"), job
    return job


def queued_job_row(runtime, model: str, **columns) -> Job:
    """A job row for GigaChat `model`:latest, as the API would have written it, unpublished."""
    job = Job(
        id=f"direct{time.time_ns()}",
        owner="master",
        status="queued",
        model_requested=model,
        provider="gigachat",
        model=model,
        channel="latest",
        upstream_id=model,
        queue="gigachat.latest",
        request={"model": model, "messages": HELLO},
        **columns,
    )
    with runtime.sessions() as session:
        session.add(job)
        session.commit()
    return job


def attempts_of(runtime, job_id: str) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).where(Attempt.job_id == job_id))


def test_retryable_error_is_retried_then_succeeds(worker, client, auth, yandex):
    add_fault(yandex, kind="http_503", model="yandexgpt-lite", branch="latest", count=1)
    job = finished(client, auth, submit(client, auth).get_json()["id"])
    assert job["status"] == "succeeded", job
    assert [(a["outcome"], a["error_reason"]) for a in job["attempts"]] == [
        ("failed", "upstream_5xx"),
        ("succeeded", None),
    ]


def test_rate_limit_with_retry_after_is_honoured(worker, client, auth, yandex):
    add_fault(yandex, kind="http_429_retry_after", model="yandexgpt-lite", count=1, retry_after=1)
    started = time.monotonic()
    job = finished(client, auth, submit(client, auth).get_json()["id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"][0]["error_reason"] == "rate_limited"
    assert time.monotonic() - started >= 1.0


def test_retries_are_bounded_then_the_plan_is_used_up(worker, client, auth, yandex, settings):
    add_fault(yandex, kind="http_500", model="yandexgpt-lite")  # every branch fails
    job = finished(client, auth, submit(client, auth).get_json()["id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "upstream_5xx"
    tried = [(a["channel"], a["outcome"]) for a in job["attempts"]]
    per_candidate = settings.job_max_attempts
    expected = [("latest", "failed")] * per_candidate + [("deprecated", "failed")] * per_candidate
    assert tried == expected


def test_permanent_error_falls_back_only_to_a_bigger_window(worker, client, auth, yandex):
    add_fault(yandex, kind="context_length", model="yandexgpt-lite")
    job = finished(client, auth, submit(client, auth).get_json()["id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "context_too_long"
    assert [(a["channel"], a["outcome"], a["error_reason"]) for a in job["attempts"]] == [
        ("latest", "failed", "context_too_long"),
        ("deprecated", "skipped", "context_too_small"),
    ]


def test_fallback_from_rc_to_latest(worker, client, auth, yandex, settings):
    add_fault(yandex, kind="http_503", model="yandexgpt", branch="rc")
    job = finished(client, auth, submit(client, auth, model="yandexgpt:rc").get_json()["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["channel"] == "latest"
    assert job["route"]["queue"] == "yandexgpt.latest"
    assert [(a["channel"], a["outcome"]) for a in job["attempts"]] == [
        ("rc", "failed")
    ] * settings.job_max_attempts + [("latest", "succeeded")]
    reasons = [c["reason"] for c in job["plan"]["candidates"]]
    assert reasons[:2] == ["requested", "version_fallback"]
    [hop] = job["fallbacks"]
    assert (hop["from"], hop["to"], hop["reason"]) == (
        "yandexgpt:rc",
        "yandexgpt:latest",
        "upstream_5xx",
    )


def test_one_attempt_budget_covers_the_whole_plan(worker, client, auth, yandex, settings):
    add_fault(yandex, kind="http_500", model="yandexgpt")
    body = {"model": "yandexgpt:rc", "cross_provider": True}
    job = finished(client, auth, submit(client, auth, **body).get_json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_5xx"
    calls = [a for a in job["attempts"] if a["outcome"] != "skipped"]
    assert len(calls) == settings.job_attempt_budget  # GigaChat-Pro was never reached
    assert {a["provider"] for a in calls} == {"yandexgpt"}
    assert job["plan"]["candidates"][-1]["route"]["provider"] == "gigachat"


def test_content_filter_falls_back_without_retrying(worker, client, auth, yandex):
    add_fault(yandex, kind="content_filter", model="yandexgpt-lite", branch="rc")
    job = finished(client, auth, submit(client, auth, model="yandexgpt-lite:rc").get_json()["id"])
    assert job["status"] == "succeeded", job
    assert [(a["channel"], a["outcome"], a["error_reason"]) for a in job["attempts"]] == [
        ("rc", "failed", "content_filtered"),
        ("latest", "succeeded", None),
    ]


def test_cross_provider_fallback_only_when_allowed(worker, client, auth, yandex):
    add_fault(yandex, kind="http_503", model="yandexgpt")
    add_fault(yandex, kind="http_503", model="yandexgpt-lite")
    refused = finished(client, auth, submit(client, auth, model="yandexgpt").get_json()["id"])
    assert refused["status"] == "failed"
    assert {a["provider"] for a in refused["attempts"]} == {"yandexgpt"}
    allowed = submit(client, auth, model="yandexgpt", cross_provider=True).get_json()
    job = finished(client, auth, allowed["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["provider"] == "gigachat"
    assert job["result"]["model"] == "GigaChat-Pro"
    assert job["plan"]["candidates"][-1]["reason"] == "cross_provider"


def test_open_circuit_is_skipped_at_submission(worker, client, auth, yandex, runtime):
    add_fault(yandex, kind="http_500", model="yandexgpt-32k", branch="latest")
    for _ in range(4):  # 3 calls each: past the breaker's minimum of 10 calls, all failing
        finished(client, auth, submit(client, auth, model="yandexgpt-32k").get_json()["id"])
    assert runtime.breaker.is_open("yandexgpt:yandexgpt-32k:latest")
    job = submit(client, auth, model="yandexgpt-32k").get_json()
    assert job["route"]["channel"] == "deprecated"
    assert [s["reason"] for s in job["plan"]["skipped"]] == ["circuit_open"]
    assert finished(client, auth, job["id"])["status"] == "succeeded"


def test_long_poll_returns_when_the_job_ends(worker, client, auth, yandex):
    requests.post(f"{yandex}/_emulator/latency", json={"latency": 1.0}, timeout=5)
    job_id = submit(client, auth).get_json()["id"]
    started = time.monotonic()
    job = client.get(f"/v1/jobs/{job_id}?wait=20", headers=auth).get_json()
    elapsed = time.monotonic() - started
    assert job["status"] == "succeeded"
    assert 0.5 <= elapsed < 10


def test_long_poll_gives_up_at_its_bound(worker, client, auth, yandex):
    requests.post(f"{yandex}/_emulator/latency", json={"latency": 3.0}, timeout=5)
    job_id = submit(client, auth).get_json()["id"]
    started = time.monotonic()
    job = client.get(f"/v1/jobs/{job_id}?wait=0.5", headers=auth).get_json()
    assert job["status"] in ("queued", "running")
    assert time.monotonic() - started < 2.5


def test_bad_wait_is_rejected(client, auth):
    response = client.get("/v1/jobs/x?wait=abc", headers=auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_request"


def test_cancel_a_running_job(worker, client, auth, yandex, runtime):
    requests.post(f"{yandex}/_emulator/latency", json={"latency": 2.0}, timeout=5)
    job_id = submit(client, auth).get_json()["id"]
    deadline = time.monotonic() + 10
    while client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = client.delete(f"/v1/jobs/{job_id}", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while attempts_of(runtime, job_id) == 0:  # the in-flight call still lands in the log
        assert time.monotonic() < deadline
        time.sleep(0.1)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    assert job["status"] == "cancelled" and job["result"] is None
    again = client.delete(f"/v1/jobs/{job_id}", headers=auth)
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "job_not_cancellable"


def test_idempotent_resubmit_returns_the_same_job(worker, client, auth, runtime):
    key = {"Idempotency-Key": f"order-{time.time_ns()}"}
    first = submit(client, auth, headers=key)
    second = submit(client, auth, headers=key)
    assert first.status_code == second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["id"] == second.get_json()["id"]
    finished(client, auth, first.get_json()["id"])
    assert attempts_of(runtime, first.get_json()["id"]) == 1
    conflict = submit(client, auth, model="GigaChat", headers=key)
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "idempotency_key_reused"


def test_redelivered_message_for_a_finished_job_does_nothing(worker, client, auth, runtime):
    job = finished(client, auth, submit(client, auth).get_json()["id"])
    CeleryDispatcher(runtime.celery).publish(job["id"], job["route"]["queue"])
    CeleryDispatcher(runtime.celery).publish(job["id"], job["route"]["queue"])
    time.sleep(1.5)
    assert attempts_of(runtime, job["id"]) == 1
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).get_json() == job


def test_sweeper_redispatches_a_job_whose_message_was_lost(worker, client, auth, runtime):
    job = queued_job_row(runtime, "GigaChat", updated_at=utcnow() - timedelta(hours=1))
    assert sweep(runtime.worker_context) >= 1
    done = finished(client, auth, job.id)
    assert done["status"] == "succeeded"


def test_results_expire_after_the_retention_period(worker, client, auth, runtime):
    job_id = finished(client, auth, submit(client, auth).get_json()["id"])["id"]
    with runtime.sessions() as session:
        session.get(Job, job_id).finished_at = utcnow() - timedelta(days=400)
        session.commit()
    sweep(runtime.worker_context)  # the sweeper also erases results past the retention period
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    assert job["result_expired"] is True and job["result"] is None
    assert job["status"] == "succeeded" and len(job["attempts"]) == 1
    with runtime.sessions() as session:
        assert session.get(Job, job_id).request["messages"] == []


def test_openai_sdk_against_the_sync_endpoint(worker, live_api):
    from openai import OpenAI

    from tests.integration.conftest import MASTER_KEY

    client = OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="GigaChat-Pro:rc", messages=[{"role": "user", "content": "Как дела?"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    assert completion.model == "GigaChat-Pro:rc"
    assert raw.headers["x-llmgw-provider"] == "gigachat"
    assert raw.headers["x-llmgw-model"] == "GigaChat-Pro:rc"
    assert raw.headers["x-llmgw-attempts"] == "1"
    assert raw.headers["x-llmgw-model-version"]


def test_openai_sdk_sees_a_failed_job_as_an_error(worker, live_api, yandex):
    import openai

    from tests.integration.conftest import MASTER_KEY

    add_fault(yandex, kind="context_length", model="yandexgpt")
    client = openai.OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="yandexgpt", messages=HELLO)
    assert error.value.body["code"] == "context_too_long"


def test_reply_cut_by_max_tokens_is_incomplete(worker, client, auth, yandex):
    add_fault(yandex, kind="truncate", model="yandexgpt-lite")
    job = finished(client, auth, submit(client, auth, max_tokens=5).get_json()["id"])
    assert job["status"] == "incomplete", job
    assert job["result"]["finish_reason"] == "length" and job["result"]["content"]


def test_a_promote_is_seen_by_the_worker_for_jobs_already_queued(worker, client, auth, runtime):
    from routing import ops

    job = queued_job_row(runtime, "GigaChat-Max")  # queued before the promote
    ops.apply_op(runtime.sessions, runtime.redis, ops.promote, "GigaChat-Max", actor="it")
    try:
        time.sleep(1.0)
        CeleryDispatcher(runtime.celery).publish(job.id, "gigachat.latest")
        done = finished(client, auth, job.id)
    finally:
        ops.apply_op(runtime.sessions, runtime.redis, ops.rollback, "GigaChat-Max", actor="it")
    assert done["status"] == "succeeded"
    with runtime.sessions() as session:
        [attempt] = session.scalars(select(Attempt).where(Attempt.job_id == job.id)).all()
    assert attempt.upstream_id == "GigaChat-Max-preview"


def test_a_deprecated_version_says_so(worker, client, auth, live_api):
    from openai import OpenAI

    from tests.integration.conftest import MASTER_KEY

    job = submit(client, auth, model="yandexgpt-lite:deprecated")
    assert job.headers["Deprecation"] and job.headers["Sunset"]
    assert [w["code"] for w in job.get_json()["warnings"]] == ["model_deprecated"]
    sdk = OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="yandexgpt-lite:deprecated", messages=HELLO
    )
    assert raw.headers["Deprecation"] and raw.headers["Sunset"]
    assert raw.headers["x-llmgw-fallbacks"] == "0"
    assert raw.parse().model_extra["warnings"][0]["code"] == "model_deprecated"
