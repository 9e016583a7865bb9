"""Completion callbacks end to end: the HTTP API → a real worker process → a receiver on
127.0.0.1 (allowed here through `LLMGW_CALLBACK_ALLOWED_CIDRS`).

The worker of this module has its own Redis database (broker) and settings — a signing
secret, loopback allowed, a backoff of a fraction of a second — so the session's worker
never runs its deliveries; the database is the session's. Beat does not run in tests: the
waits kick the delivery task as beat would.
"""

from __future__ import annotations

import json
import time

import pytest
from pydantic import SecretStr
from redis import Redis

from jobs import signing
from llmgw.app import create_app
from llmgw.container import Container
from llmgw.processes import stop_process
from tests.callback_receiver import CallbackReceiver, Received
from tests.helpers import start_worker, wait_for_worker
from tests.integration.test_pacing import redis_db

pytestmark = pytest.mark.integration

MASTER_SECRET = "integration-callback-signing-secret-0123456789"
MESSAGES = [{"role": "user", "content": "Сколько будет 2 + 2?"}]
TIMEOUT = 60


@pytest.fixture(scope="module")
def cb_settings(settings):
    url = redis_db(settings.redis_url, 13)
    Redis.from_url(url).flushdb()
    return settings.model_copy(
        update={
            "redis_url": url,
            "callback_signing_secret": SecretStr(MASTER_SECRET),
            "callback_allowed_cidrs": "127.0.0.0/8",
            "callback_backoff_base_seconds": 0.5,
            "callback_backoff_max_seconds": 1.0,
            "callback_retry_window_seconds": 120.0,
            "callback_timeout_seconds": 5.0,
        }
    )


@pytest.fixture(scope="module")
def cb_runtime(cb_settings):
    return Container(cb_settings)


@pytest.fixture(scope="module")
def cb_worker(cb_settings, cb_runtime, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("cb-worker") / "worker.log"
    proc = start_worker(cb_settings, log_path, concurrency=8)
    try:
        wait_for_worker(cb_runtime.celery, proc, log_path)
        yield proc
    finally:
        stop_process(proc)


@pytest.fixture()
def cb_client(cb_runtime):
    return create_app(container=cb_runtime).test_client()


@pytest.fixture()
def secret(cb_client, auth) -> dict:
    """The caller's callback secret as a receiver gets it (other tests may have rotated it)."""
    response = cb_client.get("/v1/callbacks/secret", headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def verified(received: Received, secret: dict) -> dict:
    """The delivery's body, after checking its signature as a receiver would."""
    assert secret["secret"] == signing.key_secret(
        MASTER_SECRET.encode(), "master", secret["version"]
    )
    assert received.headers["X-Llmgw-Secret-Version"] == str(secret["version"])
    timestamp = int(received.headers["X-Llmgw-Timestamp"])
    assert abs(time.time() - timestamp) < 300
    signature = received.headers["X-Llmgw-Signature"]
    assert signing.verify(secret["secret"], timestamp, received.body, signature)
    return json.loads(received.body)


def wait_for_callback(client, auth, path: str, status: str) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        body = client.get(path, headers=auth).get_json()
        if body.get("callback") and body["callback"]["status"] == status:
            return body
        time.sleep(0.3)
    raise AssertionError(f"{path}: callback never {status}: {body.get('callback')}")


def submit(client, auth, url: str) -> str:
    body = {"model": "yandexgpt-lite:latest", "messages": MESSAGES, "callback_url": url}
    response = client.post("/v1/jobs", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_a_job_callback_is_delivered_once_with_a_valid_signature(
    cb_worker, cb_client, cb_runtime, auth, secret
):
    with CallbackReceiver() as receiver:
        job_id = submit(cb_client, auth, receiver.url)
        # no kick from the test: the job's end kicks the delivery task itself
        [got] = receiver.wait_for(1, TIMEOUT)
        job = wait_for_callback(cb_client, auth, f"/v1/jobs/{job_id}", "delivered")
        for _ in range(3):  # later runs of the task find nothing more to send
            cb_runtime.kick_callbacks()
        time.sleep(2)
        assert len(receiver.received) == 1
    body = verified(got, secret)
    assert (body["id"], body["status"]) == (job_id, "succeeded")
    assert body["result"]["content"] and body["attempts"]
    assert got.headers["X-Llmgw-Event"] == "job.succeeded"
    assert job["callback"]["attempts"] == 1 and job["callback"]["last_status_code"] == 200
    assert job["callback"]["delivered_at"] is not None
    assert {k: v for k, v in body.items() if k != "callback"} == {
        k: v for k, v in job.items() if k != "callback"
    }  # the same JSON as GET /v1/jobs/<id>


def test_a_failing_receiver_gets_the_delivery_retried(
    cb_worker, cb_client, cb_runtime, auth, secret
):
    with CallbackReceiver(statuses=[500, 503]) as receiver:
        job_id = submit(cb_client, auth, receiver.url)
        received = receiver.wait_for(3, TIMEOUT, kick=cb_runtime.kick_callbacks)
        job = wait_for_callback(cb_client, auth, f"/v1/jobs/{job_id}", "delivered")
    assert len({r.headers["X-Llmgw-Delivery"] for r in received}) == 1
    assert [verified(r, secret)["id"] for r in received] == [job_id] * 3
    assert job["callback"]["attempts"] == 3 and job["callback"]["last_status_code"] == 200


def test_a_batch_callback_fires_when_the_batch_completes_signed_with_a_rotated_secret(
    cb_worker, cb_client, cb_runtime, auth, secret
):
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "GigaChat:latest", "messages": MESSAGES},
        }
        for i in range(5)
    ]
    rotated = cb_client.post("/v1/callbacks/secret/rotate", headers=auth).get_json()
    assert rotated["version"] == secret["version"] + 1
    with CallbackReceiver() as receiver:
        created = cb_client.post(
            "/v1/batches", json={"requests": lines, "callback_url": receiver.url}, headers=auth
        )
        assert created.status_code == 201, created.get_json()
        batch_id = created.get_json()["id"]

        def beat() -> None:
            cb_runtime.kick_feeder()
            cb_runtime.kick_callbacks()

        [got] = receiver.wait_for(1, TIMEOUT, kick=beat)
        batch = wait_for_callback(cb_client, auth, f"/v1/batches/{batch_id}", "delivered")
    body = verified(got, rotated)
    assert (body["id"], body["object"], body["status"]) == (batch_id, "batch", "completed")
    assert body["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    assert got.headers["X-Llmgw-Event"] == "batch.completed"
    assert batch["callback"]["attempts"] == 1


def test_a_private_callback_url_is_refused_when_not_allowed(cb_client, cb_runtime, auth):
    """This gateway allows 127.0.0.0/8 only: other private targets are a 400, no job."""
    before = cb_client.get("/v1/jobs?limit=100", headers=auth).get_json()["data"]
    for url in ("http://10.1.2.3/hook", "http://169.254.169.254/", "http://[fe80::1]/hook"):
        body = {"model": "yandexgpt-lite:latest", "messages": MESSAGES, "callback_url": url}
        response = cb_client.post("/v1/jobs", json=body, headers=auth)
        assert response.status_code == 400, response.get_json()
        error = response.get_json()["error"]
        assert error["code"] == "invalid_callback_url" and "address" in error["message"]
    after = cb_client.get("/v1/jobs?limit=100", headers=auth).get_json()["data"]
    assert [j["id"] for j in after] == [j["id"] for j in before]
