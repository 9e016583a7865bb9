"""Bad input never reaches the queue: a clear 4xx with a machine-readable code, no job row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage.models import Job

GOOD = {"model": "yandexgpt-lite:latest", "messages": [{"role": "user", "content": "Привет"}]}


def job_count(runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Job))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    return error


def test_missing_api_key(unit_client, unit_runtime):
    assert_error(unit_client.post("/v1/jobs", json=GOOD), 401, "missing_api_key")
    assert job_count(unit_runtime) == 0


def test_wrong_api_key(unit_client, unit_runtime):
    response = unit_client.post("/v1/jobs", json=GOOD, headers={"Authorization": "Bearer x"})
    assert_error(response, 401, "invalid_api_key")
    assert job_count(unit_runtime) == 0


def test_malformed_json(unit_client, unit_runtime, master_auth):
    response = unit_client.post(
        "/v1/jobs", data='{"model": ', content_type="application/json", headers=master_auth
    )
    assert_error(response, 400, "invalid_json")
    assert job_count(unit_runtime) == 0


def test_not_json(unit_client, master_auth):
    response = unit_client.post("/v1/jobs", data="model=x", headers=master_auth)
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": GOOD["messages"]}, "model"),
        ({"model": "yandexgpt-lite"}, "messages"),
        ({**GOOD, "messages": []}, "messages"),
        ({**GOOD, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({**GOOD, "messages": [{"role": "user", "content": ""}]}, "messages.0.content"),
        ({**GOOD, "temperature": 5}, "temperature"),
        ({**GOOD, "max_tokens": 0}, "max_tokens"),
        ({**GOOD, "surprise": 1}, "surprise"),
        ([1, 2], ""),
    ],
)
def test_invalid_body_names_the_field(unit_client, unit_runtime, master_auth, body, field):
    error = assert_error(
        unit_client.post("/v1/jobs", json=body, headers=master_auth), 400, "invalid_request"
    )
    assert field in [p["field"] for p in error["problems"]]
    assert job_count(unit_runtime) == 0


def test_unknown_model_lists_the_choices(unit_client, unit_runtime, master_auth):
    response = unit_client.post("/v1/jobs", json={**GOOD, "model": "gpt-4"}, headers=master_auth)
    error = assert_error(response, 404, "model_not_found")
    assert "yandexgpt-lite" in error["choices"] and "GigaChat-Pro" in error["choices"]
    assert job_count(unit_runtime) == 0


def test_unknown_channel_lists_the_channels(unit_client, unit_runtime, master_auth):
    body = {**GOOD, "model": "GigaChat:deprecated"}
    error = assert_error(
        unit_client.post("/v1/jobs", json=body, headers=master_auth), 404, "channel_not_found"
    )
    assert error["choices"] == ["latest", "rc"]
    assert job_count(unit_runtime) == 0


def test_malformed_model_id(unit_client, unit_runtime, master_auth):
    body = {**GOOD, "model": "yandexgpt:rc:extra"}
    assert_error(
        unit_client.post("/v1/jobs", json=body, headers=master_auth), 400, "invalid_model_id"
    )
    assert job_count(unit_runtime) == 0


def test_unknown_route_is_json(unit_client):
    assert_error(unit_client.get("/v1/nothing-here"), 404, "unknown_route")


def test_healthz(unit_client):
    assert unit_client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_the_unreachable_redis(unit_settings):
    from llmgw.app import create_app

    client = create_app(unit_settings).test_client()
    response = client.get("/readyz")
    error = assert_error(response, 503, "not_ready")
    assert error["checks"]["database"] == "ok"
    assert error["checks"]["redis"].startswith("unreachable")


def test_a_request_too_large_for_every_window_is_the_clients_mistake(unit_client, master_auth):
    body = {"model": "yandexgpt-lite", "messages": [{"role": "user", "content": "Hi"}]}
    response = unit_client.post(
        "/v1/jobs", json={**body, "max_tokens": 120_000}, headers=master_auth
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "context_length_exceeded"
    assert {s["reason"] for s in response.get_json()["error"]["skipped"]} >= {"context_too_small"}


def test_redis_down_is_a_503_with_retry_after_not_a_500(unit_runtime, master_auth):
    import redis

    from jobs import lifecycle
    from jobs.spec import JobRequest, JobSpec
    from llmgw.app import create_app

    body = {"model": "GigaChat", "messages": [{"role": "user", "content": "Hi"}]}
    plan = unit_runtime.resolver.plan("GigaChat")
    with unit_runtime.sessions() as session:  # a queued job to long-poll
        spec = JobSpec.build(JobRequest.model_validate(body), plan, stream=False)
        lifecycle.create(session, "waiting", "master", plan.primary, spec, "interactive")
        session.commit()
    unit_runtime.__dict__["redis"] = redis.Redis(port=1, socket_connect_timeout=0.2)
    client = create_app(container=unit_runtime).test_client()
    for response in (
        client.post("/v1/jobs", json=body, headers=master_auth),
        client.get("/v1/jobs/waiting?wait=1", headers=master_auth),
    ):
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["code"] == "unavailable"
        assert response.headers["Retry-After"] == "5"
