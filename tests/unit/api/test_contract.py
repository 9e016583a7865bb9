"""What every declared endpoint does with a request before its view runs: one JSON reader
(415, invalid JSON, too deep), query models (400 with problems), and JSON 404/405."""

from __future__ import annotations

import pytest

from api.openapi import UNDOCUMENTED_ENDPOINTS, openapi_path


def body_endpoints(app) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS:
            continue
        contract = app.view_functions[rule.endpoint].contract
        if contract.body is not None:
            url = openapi_path(rule).replace("{", "").replace("}", "")
            found.append((contract.method, url))
    return sorted(found)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_there_are_body_endpoints_to_check(unit_client):
    assert len(body_endpoints(unit_client.application)) >= 10


def test_every_body_endpoint_wants_json(unit_client, master_auth):
    for method, url in body_endpoints(unit_client.application):
        response = unit_client.open(url, method=method, data="score=5", headers=master_auth)
        assert_error(response, 415, "unsupported_media_type")
        response = unit_client.open(url, method=method, headers=master_auth)  # no body at all
        assert_error(response, 415, "unsupported_media_type")


def test_every_body_endpoint_rejects_invalid_json(unit_client, master_auth):
    for method, url in body_endpoints(unit_client.application):
        response = unit_client.open(
            url, method=method, data="{'no", content_type="application/json", headers=master_auth
        )
        assert_error(response, 400, "invalid_json")


def test_too_deeply_nested_json_is_a_400(unit_client, master_auth):
    deep = "[" * 100_000 + "]" * 100_000
    for method, url in body_endpoints(unit_client.application):
        response = unit_client.open(
            url, method=method, data=deep, content_type="application/json", headers=master_auth
        )
        assert_error(response, 400, "invalid_json")


def test_authentication_comes_before_the_body(unit_client):
    assert_error(unit_client.post("/v1/jobs", data="x"), 401, "missing_api_key")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/jobs/abc?wait=soon", "wait"),
        ("/v1/jobs/abc?wait=-1", "wait"),
        ("/v1/jobs/abc?wait=nan", "wait"),
        ("/v1/models/yandexgpt/resolve?estimated_tokens=many", "estimated_tokens"),
        ("/v1/models/yandexgpt/resolve?cross_provider=perhaps", "cross_provider"),
        ("/v1/models/yandexgpt/resolve?surprise=1", "surprise"),
        ("/v1/admin/models/yandexgpt/events?limit=x", "limit"),
        ("/v1/admin/models/yandexgpt/compare?days=0", "days"),
    ],
)
def test_a_bad_query_value_is_a_400_with_problems(unit_client, master_auth, url, field):
    error = assert_error(unit_client.get(url, headers=master_auth), 400, "invalid_request")
    assert [p["field"] for p in error["problems"]] == [field]


def test_unknown_route_is_a_json_404(unit_client):
    assert_error(unit_client.get("/v1/nothing-here"), 404, "unknown_route")


def test_wrong_method_is_a_json_405_with_allow(unit_client):
    response = unit_client.put("/v1/jobs")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) >= {"POST"}


def test_timestamps_carry_their_utc_offset(unit_client, master_auth):
    created = unit_client.post("/v1/admin/keys", json={"name": "t"}, headers=master_auth)
    assert created.get_json()["created_at"].endswith("Z")
    shown = unit_client.get("/v1/admin/models/yandexgpt", headers=master_auth).get_json()
    stamps = [c["deprecated_at"] for c in shown["channels"] if c["deprecated_at"]]
    assert stamps and all(s.endswith("Z") for s in stamps)


def test_a_view_answer_that_breaks_its_model_is_a_500_not_a_400():
    from flask import Blueprint, Flask

    from api.contract import endpoint
    from api.errors import register_error_handlers
    from api.health import HealthOut

    app, bp = Flask("t"), Blueprint("t", __name__)
    register_error_handlers(app)

    @endpoint(
        bp, "GET", "/x", summary="x", tag="t", operation_id="x", response=HealthOut, auth="none"
    )
    def broken():
        return {"status": "not ok"}

    app.register_blueprint(bp)
    assert_error(app.test_client().get("/x"), 500, "internal_error")
