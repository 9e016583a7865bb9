"""`/v1/models` for every key, the routing dry-run, and job feedback."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.unit.routing.conftest import USER_KEY, add_job


def test_models_list_is_openai_shaped_with_channels(unit_client, user_auth):
    body = unit_client.get("/v1/models", headers=user_auth).get_json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    yandex = by_id["yandexgpt"]
    assert (yandex["object"], yandex["owned_by"]) == ("model", "yandexgpt")
    assert isinstance(yandex["created"], int)
    assert "yandexgpt-pro" in yandex["aliases"]
    channels = {c["channel"]: c for c in yandex["channels"]}
    assert channels["deprecated"]["status"] == "deprecated"
    assert channels["deprecated"]["sunset_at"] == "2027-03-01T00:00:00Z"
    assert channels["deprecated"]["past_sunset"] is False
    assert channels["rc"]["id"] == "yandexgpt:rc" and channels["rc"]["version"] == "22.05.2025"
    assert "upstream_id" not in channels["rc"]  # operators' detail stays in the admin API


def test_models_list_needs_a_key(unit_client):
    assert unit_client.get("/v1/models").status_code == 401


def test_the_openai_sdk_lists_and_retrieves_models(unit_runtime, user_auth):
    from llmgw.app import create_app

    app = create_app(container=unit_runtime)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://llmgw")
    client = openai.OpenAI(api_key=USER_KEY, base_url="http://llmgw/v1", http_client=http)
    ids = [m.id for m in client.models.list()]
    assert "GigaChat-Pro" in ids and "yandexgpt-lite" in ids
    model = client.models.retrieve("yandexgpt-pro")
    assert model.id == "yandexgpt" and model.owned_by == "yandexgpt"


def test_get_one_model_by_alias_and_unknown(unit_client, user_auth):
    one = unit_client.get("/v1/models/yandexgpt-5-pro:rc", headers=user_auth).get_json()
    assert (one["id"], one["parent"]) == ("yandexgpt:rc", "yandexgpt")
    assert [c["id"] for c in one["channels"]] == ["yandexgpt:rc"]
    assert unit_client.get("/v1/models/yandexgpt-5-pro", headers=user_auth).get_json()["id"] == (
        "yandexgpt"
    )
    error = unit_client.get("/v1/models/claude", headers=user_auth).get_json()["error"]
    assert error["code"] == "model_not_found" and "GigaChat" in error["choices"]


def test_resolve_dry_run_shows_route_plan_and_reasons(unit_client, user_auth):
    response = unit_client.get(
        "/v1/models/yandexgpt:rc/resolve?cross_provider=true&fallback=yandexgpt-lite",
        headers=user_auth,
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["key"] == "user1" and body["route"]["queue"] == "yandexgpt.rc"
    assert [
        (c["route"]["model"], c["route"]["channel"], c["reason"]) for c in body["candidates"]
    ] == [
        ("yandexgpt", "rc", "requested"),
        ("yandexgpt", "latest", "version_fallback"),
        ("yandexgpt", "deprecated", "version_fallback"),
        ("yandexgpt-lite", "latest", "explicit"),
        ("GigaChat-Pro", "latest", "cross_provider"),
        ("GigaChat-2-Pro", "latest", "cross_provider"),
    ]
    assert "Deprecation" not in response.headers


def test_resolve_dry_run_of_a_deprecated_version_sends_the_headers(unit_client, user_auth):
    response = unit_client.get("/v1/models/yandexgpt-32k:deprecated/resolve", headers=user_auth)
    assert response.headers["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"
    assert response.headers["Deprecation"].startswith("@")
    assert response.get_json()["warnings"][0]["code"] == "model_deprecated"


def test_resolve_dry_run_reports_skips(unit_client, user_auth):
    body = unit_client.get(
        "/v1/models/GigaChat/resolve?estimated_tokens=40000&fallback=yandexgpt", headers=user_auth
    ).get_json()
    assert body["candidates"] == []
    assert [s["reason"] for s in body["skipped"]] == [
        "context_too_small",
        "cross_provider_forbidden",
    ]


def test_resolve_dry_run_skips_versions_without_the_asked_features(unit_client, user_auth):
    """yandexgpt's deprecated release (23.10.2024) predates function calling."""
    url = "/v1/models/yandexgpt:rc/resolve"
    plain = unit_client.get(url, headers=user_auth).get_json()
    assert [c["route"]["channel"] for c in plain["candidates"]] == ["rc", "latest", "deprecated"]
    body = unit_client.get(f"{url}?features=tools&features=stream", headers=user_auth).get_json()
    assert [c["route"]["channel"] for c in body["candidates"]] == ["rc", "latest"]
    [skip] = body["skipped"]
    assert skip["reason"] == "unsupported" and skip["route"]["channel"] == "deprecated"
    assert "lacks tools" in skip["detail"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("/v1/models/yandexgpt/resolve?features=telepathy", 400, "invalid_request"),
        ("/v1/models/yandexgpt:9.9/resolve", 404, "version_not_found"),
        ("/v1/models/yandexgpt:beta/resolve", 404, "channel_not_found"),
        ("/v1/models/yandexgpt/resolve?estimated_tokens=-1", 400, "invalid_request"),
        ("/v1/models/yandexgpt/resolve?surprise=1", 400, "invalid_request"),
    ],
)
def test_resolve_dry_run_errors(unit_client, user_auth, query, status, code):
    response = unit_client.get(query, headers=user_auth)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_feedback_on_an_own_finished_job(unit_client, unit_runtime, user_auth):
    job_id = add_job(unit_runtime)
    url = f"/v1/jobs/{job_id}/feedback"
    response = unit_client.post(url, json={"score": 4, "comment": "хорошо"}, headers=user_auth)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["score"] == 4
    again = unit_client.post(url, json={"score": 2}, headers=user_auth).get_json()
    assert (again["score"], again["comment"]) == (2, None)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"score": 6}, 400, "invalid_request"), ({"score": 3, "x": 1}, 400, "invalid_request")],
)
def test_feedback_validation(unit_client, unit_runtime, user_auth, body, status, code):
    job_id = add_job(unit_runtime)
    response = unit_client.post(f"/v1/jobs/{job_id}/feedback", json=body, headers=user_auth)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)


def test_feedback_on_someone_elses_or_a_running_job(unit_client, unit_runtime, user_auth):
    other = add_job(unit_runtime, owner="someone")
    response = unit_client.post(f"/v1/jobs/{other}/feedback", json={"score": 5}, headers=user_auth)
    assert response.get_json()["error"]["code"] == "job_not_found"
    running = add_job(unit_runtime, status="running")
    response = unit_client.post(
        f"/v1/jobs/{running}/feedback", json={"score": 5}, headers=user_auth
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "job_not_finished")


def test_models_list_has_every_selectable_id_with_a_real_created(unit_client, user_auth):
    body = unit_client.get("/v1/models", headers=user_auth).get_json()
    by_id = {m["id"]: m for m in body["data"]}
    for selectable in (
        "yandexgpt:rc",
        "yandexgpt-lite:latest",
        "GigaChat-2-Max:latest",
        "GigaChat-2-Pro:rc",
        "yandexgpt-32k:deprecated",
        "text-search-doc:latest",
    ):
        assert by_id[selectable]["parent"] == selectable.split(":")[0]
        assert by_id[selectable]["object"] == "model" and by_id[selectable]["owned_by"]
    assert "GigaChat-2" in by_id and by_id["GigaChat-2"]["parent"] is None
    assert all(m["created"] > 1_600_000_000 for m in body["data"])
    # A YandexGPT channel's created is its release date: 22.05.2025 for yandexgpt's rc.
    assert by_id["yandexgpt:rc"]["created"] == 1747872000
    assert by_id["yandexgpt"]["created"] == 1729641600  # the earliest: 23.10.2024
    assert by_id["yandexgpt:rc"]["versions"] == [{"version": "22.05.2025", "channel": "rc"}]


def test_the_openai_sdk_retrieves_a_channel_id(unit_runtime, user_auth):
    from llmgw.app import create_app

    app = create_app(container=unit_runtime)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://llmgw")
    client = openai.OpenAI(api_key=USER_KEY, base_url="http://llmgw/v1", http_client=http)
    assert "GigaChat-2-Max:rc" in [m.id for m in client.models.list()]
    assert client.models.retrieve("gigachat-2-max:rc").id == "GigaChat-2-Max:rc"
