"""Issue 12, input limits: a client's mistake or attack is a 4xx with the usual error body,
never a 5xx, and nothing of it is stored (body size, nesting, metadata, NUL characters,
strict admin bodies, bounded query limits, unknown ids on admin routes, 405's Allow)."""

from __future__ import annotations

import fakeredis
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from api.contract import MAX_JSON_DEPTH, json_depth
from llmgw.app import create_app
from llmgw.container import Container
from storage.models import ApiKey, CatalogueEvent, Job, JobFeedback, KeyRoutingPolicy

GOOD = {"model": "yandexgpt-lite:latest", "messages": [{"role": "user", "content": "Привет"}]}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


def count(runtime, model) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture()
def small_client(unit_settings):
    runtime = Container(unit_settings.model_copy(update={"max_body_bytes": 2048}))
    runtime.__dict__["redis"] = fakeredis.FakeRedis()
    return create_app(container=runtime).test_client(), runtime


def test_a_body_over_the_limit_is_a_json_413_and_no_job(small_client, master_auth):
    client, runtime = small_client
    body = {**GOOD, "messages": [{"role": "user", "content": "x" * 4096}]}
    error = assert_error(
        client.post("/v1/jobs", json=body, headers=master_auth), 413, "request_too_large"
    )
    assert error["limit"] == 2048
    assert count(runtime, Job) == 0


def test_the_limit_is_flask_max_content_length_from_settings(unit_client, small_client):
    assert unit_client.application.config["MAX_CONTENT_LENGTH"] == 4 * 1024 * 1024
    assert small_client[0].application.config["MAX_CONTENT_LENGTH"] == 2048


def test_json_nested_past_the_limit_is_a_400(unit_client, unit_runtime, master_auth):
    too_deep = {**GOOD, "metadata": {"a": "b"}}
    nested: object = "x"
    for _ in range(MAX_JSON_DEPTH):
        nested = [nested]
    too_deep["extra"] = nested
    response = unit_client.post("/v1/jobs", json=too_deep, headers=master_auth)
    error = assert_error(response, 400, "invalid_json")
    assert str(MAX_JSON_DEPTH) in error["message"]
    assert count(unit_runtime, Job) == 0


def test_json_depth_counts_containers_without_recursion():
    assert json_depth("x") == 0
    assert json_depth({"a": [1, {"b": []}]}) == 4
    deep: object = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"k" * 65: "v"}, f"metadata.{'k' * 65}.[key]"),
        ({"": "v"}, "metadata..[key]"),
        ({"k": "v" * 513}, "metadata.k"),
        ({f"k{i}": "v" for i in range(33)}, "metadata"),
    ],
)
def test_metadata_is_bounded(unit_client, unit_runtime, master_auth, metadata, field):
    response = unit_client.post(
        "/v1/jobs", json={**GOOD, "metadata": metadata}, headers=master_auth
    )
    error = assert_error(response, 400, "invalid_request")
    assert field in {p["field"] for p in error["problems"]}
    chat = {"model": GOOD["model"], "messages": GOOD["messages"], "metadata": metadata}
    response = unit_client.post("/v1/chat/completions", json=chat, headers=master_auth)
    assert_error(response, 400, "invalid_request")
    assert count(unit_runtime, Job) == 0


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/v1/jobs", {**GOOD, "metadata": {"k": "a\u0000b"}}, "metadata.k"),
        ("POST", "/v1/jobs", {**GOOD, "metadata": {"a\u0000": "b"}}, "metadata"),
        (
            "POST",
            "/v1/jobs",
            {**GOOD, "messages": [{"role": "user", "content": "\u0000"}]},
            "messages.0.content",
        ),
        ("POST", "/v1/admin/keys", {"name": "evil\u0000"}, "name"),
        ("POST", "/v1/jobs/some-job/feedback", {"score": 5, "comment": "\u0000"}, "comment"),
    ],
)
def test_a_nul_character_in_a_body_is_a_400_and_nothing_is_stored(
    unit_client, unit_runtime, master_auth, method, url, body, field
):
    response = unit_client.open(url, method=method, json=body, headers=master_auth)
    error = assert_error(response, 400, "invalid_request")
    assert [p["field"] for p in error["problems"]] == [field]
    for model in (Job, ApiKey, JobFeedback):
        assert count(unit_runtime, model) == 0


def test_a_nul_character_in_a_path_or_query_is_a_400(unit_client, unit_runtime, master_auth):
    for method, url in [
        ("PUT", "/v1/admin/routing/keys/a%00b"),
        ("GET", "/v1/admin/routing/keys/a%00b"),
        ("GET", "/v1/jobs/a%00b"),
        ("GET", "/v1/models/yandexgpt/resolve?estimated_tokens=1%00"),
    ]:
        body = {"cross_provider": True} if method == "PUT" else None
        response = unit_client.open(url, method=method, json=body, headers=master_auth)
        assert_error(response, 400, "invalid_request")
    assert count(unit_runtime, KeyRoutingPolicy) == 0


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/admin/keys", {"name": "x", "admin": "yes"}),
        ("/v1/admin/keys", {"name": "x", "admin": 1}),
        ("/v1/admin/models/yandexgpt/promote", {"deprecation_days": "5"}),
        ("/v1/admin/models/yandexgpt/policy", {"deprecation_days": "5"}),
        ("/v1/admin/models/yandexgpt/retire", {"channel": 5}),
        ("/v1/admin/models/yandexgpt/rollback", {"reason": 5}),
    ],
)
def test_admin_bodies_are_strict(unit_client, unit_runtime, master_auth, url, body):
    assert_error(unit_client.post(url, json=body, headers=master_auth), 400, "invalid_request")
    assert count(unit_runtime, ApiKey) == 0
    assert count(unit_runtime, CatalogueEvent) == 0


def test_deprecate_still_takes_a_timestamp_string(unit_client, master_auth):
    body = {"channel": "rc", "sunset_at": "2099-01-01T00:00:00Z"}
    response = unit_client.post(
        "/v1/admin/models/yandexgpt-lite/deprecate", json=body, headers=master_auth
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def query_int_fields(app) -> list[tuple[str, str, dict]]:
    found = []
    for rule in app.url_map.iter_rules():
        contract = getattr(app.view_functions[rule.endpoint], "contract", None)
        query: type[BaseModel] | None = contract and contract.query
        for name, schema in (query.model_json_schema()["properties"] if query else {}).items():
            if schema.get("type") in ("integer", "number"):
                found.append((rule.rule, name, schema))
    return found


def test_every_numeric_query_parameter_is_bounded_on_both_sides(unit_client):
    found = query_int_fields(unit_client.application)
    assert any(name == "limit" for _, name, _ in found)
    for rule, name, schema in found:
        assert {"minimum", "exclusiveMinimum"} & set(schema), (rule, name)
        if name == "limit":
            assert "maximum" in schema, (rule, name)


@pytest.mark.parametrize("limit", ["-5", "0", "1001", "1e9"])
def test_events_limit_out_of_range_is_a_400(unit_client, master_auth, limit):
    url = f"/v1/admin/models/yandexgpt/events?limit={limit}"
    error = assert_error(unit_client.get(url, headers=master_auth), 400, "invalid_request")
    assert [p["field"] for p in error["problems"]] == ["limit"]


def test_key_policy_of_an_unknown_key_is_a_404_and_writes_nothing(
    unit_client, unit_runtime, master_auth
):
    url = "/v1/admin/routing/keys/no-such-key"
    put = unit_client.put(url, json={"cross_provider": True}, headers=master_auth)
    assert_error(put, 404, "key_not_found")
    assert_error(unit_client.get(url, headers=master_auth), 404, "key_not_found")
    assert count(unit_runtime, KeyRoutingPolicy) == 0
    assert count(unit_runtime, CatalogueEvent) == 0


def test_key_policy_of_master_and_of_a_real_key(unit_client, master_auth):
    created = unit_client.post("/v1/admin/keys", json={"name": "svc"}, headers=master_auth)
    for key_id in ("master", created.get_json()["id"]):
        url = f"/v1/admin/routing/keys/{key_id}"
        put = unit_client.put(url, json={"cross_provider": False}, headers=master_auth)
        assert put.status_code == 200, put.get_data(as_text=True)
        shown = unit_client.get(url, headers=master_auth).get_json()
        assert shown == {"key_id": key_id, "cross_provider": False}


def test_resetting_an_unknown_circuit_is_a_404(unit_client, master_auth):
    url = "/v1/admin/routing/circuits/nope:nope:latest/reset"
    assert_error(unit_client.post(url, headers=master_auth), 404, "circuit_not_found")
    known = unit_client.get("/v1/admin/routing/circuits", headers=master_auth).get_json()
    key = known["data"][0]["key"]
    reset = unit_client.post(f"/v1/admin/routing/circuits/{key}/reset", headers=master_auth)
    assert reset.status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("PUT", "/v1/jobs", {"POST"}),
        ("POST", "/v1/jobs/abc", {"GET", "DELETE"}),
        ("PATCH", "/v1/admin/keys", {"GET", "POST"}),
        ("DELETE", "/v1/admin/routing/keys/master", {"GET", "PUT"}),
    ],
)
def test_405_carries_allow(unit_client, master_auth, method, url, allowed):
    response = unit_client.open(url, method=method, headers=master_auth)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) >= allowed
