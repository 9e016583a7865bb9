"""The error body's OpenAI conventions (`type`, `param`) beside llmgw's `code` and `message`,
the JSON 404 for unknown routes, and the two `Authorization` schemes an llmgw key may use."""

from __future__ import annotations

import pytest

from api.errors import error_body, error_type
from tests.conftest import UNIT_MASTER_KEY

CHAT = {"model": "yandexgpt-lite:latest", "messages": [{"role": "user", "content": "Привет"}]}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message", "type", "param"}
    return error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (410, "invalid_request_error"),
        (413, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (502, "server_error"),
        (503, "service_unavailable_error"),
        (504, "server_error"),
    ],
)
def test_type_follows_the_status(status, expected):
    assert error_type(status) == expected


def test_details_cannot_overwrite_the_conventions():
    body = error_body(404, "job_not_found", "No such job.", None, type="x", job_id="j1")
    assert body == {
        "error": {
            "code": "job_not_found",
            "message": "No such job.",
            "type": "not_found_error",
            "param": None,
            "job_id": "j1",
        }
    }


def test_missing_key_is_an_authentication_error(unit_client):
    error = error_of(unit_client.post("/v1/chat/completions", json=CHAT), 401)
    assert (error["code"], error["type"], error["param"]) == (
        "missing_api_key",
        "authentication_error",
        None,
    )
    assert "Api-Key" in error["message"] and "Bearer" in error["message"]


def test_invalid_field_names_the_param(unit_client, master_auth):
    body = {**CHAT, "temperature": 7}
    error = error_of(unit_client.post("/v1/chat/completions", json=body, headers=master_auth), 400)
    assert (error["code"], error["type"], error["param"]) == (
        "invalid_request",
        "invalid_request_error",
        "temperature",
    )


def test_unknown_model_names_the_model_param(unit_client, master_auth):
    body = {**CHAT, "model": "no-such-model"}
    error = error_of(unit_client.post("/v1/chat/completions", json=body, headers=master_auth), 404)
    assert (error["code"], error["type"], error["param"]) == (
        "model_not_found",
        "not_found_error",
        "model",
    )
    assert "yandexgpt-lite" in error["choices"]


def test_admin_endpoint_with_a_plain_key_is_a_permission_error(unit_client, master_auth):
    created = unit_client.post("/v1/admin/keys", json={"name": "plain"}, headers=master_auth)
    assert created.status_code == 201, created.get_data(as_text=True)
    plain = {"Authorization": f"Bearer {created.get_json()['key']}"}
    error = error_of(unit_client.get("/v1/admin/keys", headers=plain), 403)
    assert (error["code"], error["type"]) == ("forbidden", "permission_error")


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/responses", "/v1/nothing-here"])
def test_unknown_route_answers_the_json_error(unit_client, master_auth, path):
    response = unit_client.post(path, json={"model": "x", "prompt": "hi"}, headers=master_auth)
    assert response.mimetype == "application/json"
    error = error_of(response, 404)
    assert (error["code"], error["type"], error["param"]) == (
        "unknown_route",
        "not_found_error",
        None,
    )
    assert path in error["message"] and "/v1/chat/completions" in error["message"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Api-Key", "api-key", "API-KEY"])
def test_either_scheme_carries_the_key(unit_client, scheme):
    response = unit_client.get(
        "/v1/models", headers={"Authorization": f"{scheme} {UNIT_MASTER_KEY}"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["object"] == "list"


@pytest.mark.parametrize("header", ["Basic abc", "Api-Key", "Token " + UNIT_MASTER_KEY, ""])
def test_other_schemes_are_refused(unit_client, header):
    response = unit_client.get("/v1/models", headers={"Authorization": header})
    assert error_of(response, 401)["code"] == "missing_api_key"


def test_a_wrong_key_under_api_key_is_refused(unit_client):
    response = unit_client.get("/v1/models", headers={"Authorization": "Api-Key wrong"})
    assert error_of(response, 401)["code"] == "invalid_api_key"
