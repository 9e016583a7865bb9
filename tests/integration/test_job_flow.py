"""A job end to end: HTTP API → Redis queue → real worker process → emulator over HTTP."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from storage.models import Attempt, Job

pytestmark = pytest.mark.integration


def submit(client, auth, model: str, text: str = "Привет"):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return client.post("/v1/jobs", json=body, headers=auth)


def wait_for_end(client, auth, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.parametrize(
    ("model", "provider", "queue", "upstream"),
    [
        ("yandexgpt-lite:latest", "yandexgpt", "yandexgpt.latest", "yandexgpt-lite/latest"),
        ("GigaChat:latest", "gigachat", "gigachat.latest", "GigaChat"),
        ("GigaChat-Pro:rc", "gigachat", "gigachat.rc", "GigaChat-Pro-preview"),
        ("yandexgpt:rc", "yandexgpt", "yandexgpt.rc", "yandexgpt/rc"),
    ],
)
def test_job_succeeds_through_the_worker(
    worker, client, auth, runtime, model, provider, queue, upstream
):
    response = submit(client, auth, model, "Расскажи про Казань")
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["route"] == {
        "provider": provider,
        "model": model.split(":")[0],
        "channel": model.split(":")[1],
        "upstream_id": upstream,
        "queue": queue,
    }

    done = wait_for_end(client, auth, job["id"])

    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["content"].strip()
    assert result["provider"] == provider
    usage = result["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result["model_version"]
    assert [a["outcome"] for a in done["attempts"]] == ["succeeded"]
    assert done["attempts"][0]["latency_ms"] > 0
    assert done["started_at"] and done["finished_at"]
    with runtime.sessions() as session:
        row = session.get(Job, job["id"])
        assert row.status == "succeeded" and row.total_tokens == usage["total_tokens"]
        attempts = session.scalar(select(func.count()).where(Attempt.job_id == job["id"]))
        assert attempts == 1


def test_answer_depends_on_the_prompt(worker, client, auth):
    first = wait_for_end(client, auth, submit(client, auth, "GigaChat", "про кошек").json["id"])
    second = wait_for_end(client, auth, submit(client, auth, "GigaChat", "про собак").json["id"])
    assert first["result"]["content"] != second["result"]["content"]


def test_jobs_are_visible_only_to_their_owner(worker, client, auth):
    job = submit(client, auth, "yandexgpt-lite").get_json()
    other = client.get(f"/v1/jobs/{job['id']}", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401
    missing = client.get("/v1/jobs/does-not-exist", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "job_not_found"


def test_readyz_sees_redis_and_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"redis": "ok", "database": "ok"}


def test_a_job_belongs_to_the_key_that_created_it(worker, client, auth):
    def new_key(name: str) -> dict:
        response = client.post("/v1/admin/keys", json={"name": name}, headers=auth)
        return {"Authorization": f"Bearer {response.get_json()['key']}"}

    alice, bob = new_key("alice"), new_key("bob")
    job = submit(client, alice, "GigaChat").get_json()
    assert client.get(f"/v1/jobs/{job['id']}", headers=bob).status_code == 404
    assert client.delete(f"/v1/jobs/{job['id']}", headers=bob).status_code == 404
    assert wait_for_end(client, alice, job["id"])["status"] == "succeeded"
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).status_code == 200  # admin
