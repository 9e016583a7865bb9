"""Callbacks over HTTP: bad callback URLs are 400s that say why and write nothing, no
signing secret is a 503, and each key reads and rotates its own signing secret."""

from __future__ import annotations

import dataclasses

import fakeredis
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from jobs import signing
from llmgw.app import create_app
from llmgw.container import Container
from storage.models import Batch, CallbackDelivery, Job

SECRET = "s" * 40
MESSAGES = [{"role": "user", "content": "Hi"}]


class Recorder:
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, job_id: str, queue: str, priority: str = "interactive") -> None:
        self.published.append(job_id)


@pytest.fixture()
def signed_runtime(unit_settings, monkeypatch):
    runtime = Container(
        unit_settings.model_copy(
            update={
                "callback_signing_secret": SecretStr(SECRET),
                "callback_allowed_cidrs": "127.0.0.0/8",
            }
        )
    )
    runtime.__dict__["redis"] = fakeredis.FakeRedis()
    runtime.__dict__["submitter"] = dataclasses.replace(runtime.submitter, dispatcher=Recorder())
    monkeypatch.setattr(type(runtime), "kick_feeder", lambda self: None)
    return runtime


@pytest.fixture()
def signed_client(signed_runtime):
    return create_app(container=signed_runtime).test_client()


def counts(runtime) -> tuple[int, int, int]:
    with runtime.sessions() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(t))
            for t in (Job, Batch, CallbackDelivery)
        )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]:8080/hook", "loopback"),
        ("ftp://93.184.216.34/hook", "http:// or https://"),
        ("https://u:p@93.184.216.34/hook", "credentials"),
    ],
)
def test_a_bad_callback_url_is_a_400_that_says_why(
    signed_client, signed_runtime, master_auth, url, why
):
    body = {"model": "yandexgpt", "messages": MESSAGES, "callback_url": url}
    response = signed_client.post("/v1/jobs", json=body, headers=master_auth)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_callback_url" and why in error["message"]
    batch = {"requests": [batch_line("a")], "callback_url": url}
    response = signed_client.post("/v1/batches", json=batch, headers=master_auth)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_callback_url"
    assert counts(signed_runtime) == (0, 0, 0)


def batch_line(custom_id: str, **extra) -> dict:
    body = {"model": "yandexgpt", "messages": MESSAGES, **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def test_an_allowed_callback_is_stored_with_the_job_and_shown(signed_client, master_auth):
    url = "http://127.0.0.1:9/hook"
    body = {"model": "yandexgpt", "messages": MESSAGES, "callback_url": url}
    response = signed_client.post("/v1/jobs", json=body, headers=master_auth)
    assert response.status_code == 202, response.get_json()
    callback = response.get_json()["callback"]
    assert callback == {
        "url": url,
        "status": "pending",
        "attempts": 0,
        "last_status_code": None,
        "last_error": None,
        "next_attempt_at": None,
        "delivered_at": None,
    }
    plain = {"model": "yandexgpt", "messages": MESSAGES}
    assert (
        signed_client.post("/v1/jobs", json=plain, headers=master_auth).get_json()["callback"]
        is None
    )


def test_a_batch_callback_is_stored_with_the_batch_and_lines_may_not_have_one(
    signed_client, master_auth
):
    url = "http://127.0.0.1:9/hook"
    batch = {"requests": [batch_line("a")], "callback_url": url}
    created = signed_client.post("/v1/batches", json=batch, headers=master_auth)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["callback"]["url"] == url
    per_line = {"requests": [batch_line("a", callback_url=url)]}
    refused = signed_client.post("/v1/batches", json=per_line, headers=master_auth)
    assert refused.status_code == 400
    assert "not on a line" in refused.get_json()["error"]["lines"][0]["problem"]


def test_without_a_signing_secret_callbacks_are_a_503(unit_client, unit_runtime, master_auth):
    body = {"model": "yandexgpt", "messages": MESSAGES, "callback_url": "https://93.184.216.34/h"}
    response = unit_client.post("/v1/jobs", json=body, headers=master_auth)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "callbacks_unavailable"
    assert unit_client.get("/v1/callbacks/secret", headers=master_auth).status_code == 503
    assert counts(unit_runtime) == (0, 0, 0)


def test_each_key_reads_and_rotates_its_own_secret(signed_client, master_auth):
    first = signed_client.get("/v1/callbacks/secret", headers=master_auth).get_json()
    assert first["version"] == 0
    assert first["secret"] == signing.key_secret(SECRET.encode(), "master", 0)
    key = signed_client.post("/v1/admin/keys", json={"name": "svc"}, headers=master_auth)
    user = {"Authorization": f"Bearer {key.get_json()['key']}"}
    theirs = signed_client.get("/v1/callbacks/secret", headers=user).get_json()
    assert theirs["secret"] != first["secret"] and theirs["version"] == 0
    rotated = signed_client.post("/v1/callbacks/secret/rotate", headers=master_auth).get_json()
    assert rotated["version"] == 1 and rotated["secret"] != first["secret"]
    again = signed_client.get("/v1/callbacks/secret", headers=master_auth).get_json()
    assert again == rotated
    twice = signed_client.post("/v1/callbacks/secret/rotate", headers=master_auth).get_json()
    assert twice["version"] == 2
    assert signed_client.get("/v1/callbacks/secret", headers=user).get_json() == theirs
    assert signed_client.get("/v1/callbacks/secret").status_code == 401


def test_cancelling_a_job_with_a_callback_kicks_the_delivery(
    signed_client, signed_runtime, master_auth, monkeypatch
):
    kicks: list[int] = []
    monkeypatch.setattr(type(signed_runtime), "kick_callbacks", lambda self: kicks.append(1))
    with_callback = {
        "model": "yandexgpt",
        "messages": MESSAGES,
        "callback_url": "http://127.0.0.1:9/",
    }
    plain = {"model": "yandexgpt", "messages": MESSAGES}
    ids = [
        signed_client.post("/v1/jobs", json=body, headers=master_auth).get_json()["id"]
        for body in (with_callback, plain)
    ]
    cancelled = signed_client.delete(f"/v1/jobs/{ids[0]}", headers=master_auth)
    assert cancelled.status_code == 200 and cancelled.get_json()["callback"]["status"] == "pending"
    assert kicks == [1]
    assert signed_client.delete(f"/v1/jobs/{ids[1]}", headers=master_auth).status_code == 200
    assert kicks == [1]
