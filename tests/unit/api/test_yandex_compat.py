"""YandexGPT's wires on llmgw, without a worker: model URIs, the chunk shape a `gpt://` request
streams with, and the native endpoint's validation and error envelope."""

from __future__ import annotations

import pytest

from api.chat import ChunkMaker
from api.model_uri import catalogue_model_id, is_model_uri
from routing.errors import MalformedModelId

NATIVE = {
    "modelUri": "gpt://b1gfolder/yandexgpt-lite/latest",
    "messages": [{"role": "user", "text": "Привет"}],
}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt://b1gfolder/yandexgpt-lite/latest", "yandexgpt-lite:latest"),
        ("gpt://another/yandexgpt/rc", "yandexgpt:rc"),
        ("gpt://f/yandexgpt-32k/deprecated", "yandexgpt-32k:deprecated"),
        ("gpt://f/yandexgpt-lite", "yandexgpt-lite:latest"),
        ("GPT://f/yandexgpt/rc/", "yandexgpt:rc"),
        ("yandexgpt-lite:rc", "yandexgpt-lite:rc"),  # an llmgw id passes unchanged
        ("GigaChat-Pro", "GigaChat-Pro"),
    ],
)
def test_uri_to_model_id(model, expected):
    assert catalogue_model_id(model) == expected


@pytest.mark.parametrize(
    "uri",
    ["gpt://", "gpt://folder", "gpt://f/yandexgpt/latest@tuned", "gpt://f/a/b/c", "gpt:// f/x"],
)
def test_malformed_uris(uri):
    assert is_model_uri(uri)
    with pytest.raises(MalformedModelId, match="gpt://<folder>/<model>/<branch>"):
        catalogue_model_id(uri)


def test_yandex_chunks_leave_nulls_out():
    openai_style = ChunkMaker("j1", "m", 1, include_usage=True)
    yandex_style = ChunkMaker("j1", "m", 1, include_usage=True, yandex_wire=True)
    assert openai_style.chunk({"content": "a"})["choices"][0]["finish_reason"] is None
    assert openai_style.chunk({"content": "a"})["usage"] is None
    middle = yandex_style.chunk({"content": "a"})
    assert middle["choices"] == [{"index": 0, "delta": {"content": "a"}}]
    assert "usage" not in middle
    assert yandex_style.chunk({}, "stop")["choices"][0]["finish_reason"] == "stop"


def native_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


def test_native_unknown_model_has_both_envelopes(unit_client, master_auth):
    body = {**NATIVE, "modelUri": "gpt://f/no-such-model/latest"}
    response = unit_client.post("/foundationModels/v1/completion", json=body, headers=master_auth)
    error = native_error(response, 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert (error["grpcCode"], error["httpCode"], error["httpStatus"]) == (5, 404, "Not Found")
    assert error["details"] == [] and "yandexgpt-lite" in error["choices"]


def test_native_without_a_key(unit_client):
    response = unit_client.post("/foundationModels/v1/completion", json=NATIVE)
    error = native_error(response, 401)
    assert (error["code"], error["grpcCode"], error["type"]) == (
        "missing_api_key",
        16,
        "authentication_error",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"maxTokens": "10"}, "maxTokens"),  # belongs in completionOptions
        ({"completionOptions": {"temperature": 1.5}}, "completionOptions.temperature"),
        ({"completionOptions": {"maxTokens": "many"}}, "completionOptions.maxTokens"),
        ({"completionOptions": {"maxTokens": "999999"}}, "completionOptions.maxTokens"),
        ({"completionOptions": {"temperature": False}}, "completionOptions.temperature"),
        ({"completionOptions": {"stream": "yes"}}, "completionOptions.stream"),
        (
            {"completionOptions": {"reasoningOptions": {"mode": "ENABLED_HIDDEN"}}},
            "completionOptions.reasoningOptions",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages.0.text"),
        ({"messages": []}, "messages"),
    ],
)
def test_native_refuses_what_it_does_not_carry(unit_client, master_auth, change, field):
    body = {**NATIVE, **change}
    response = unit_client.post("/foundationModels/v1/completion", json=body, headers=master_auth)
    error = native_error(response, 400)
    assert error["code"] == "invalid_request" and error["grpcCode"] == 3
    assert any(problem["field"].startswith(field) for problem in error["problems"])


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tools": [{"function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"toolChoice": {"mode": "REQUIRED"}}, "toolChoice"),
        ({"jsonObject": True}, "jsonObject"),
        ({"jsonObject": False}, "jsonObject"),  # the body's schema has no such field
        ({"tools": []}, "tools"),
        ({"parallelToolCalls": True}, "parallelToolCalls"),
        ({"jsonSchema": {"schema": {"type": "object"}}}, "jsonSchema"),
        (
            {"messages": [{"role": "user", "toolResultList": {"toolResults": []}}]},
            "messages.0.toolResultList",
        ),
        (
            {
                "messages": [
                    {"role": "user", "text": "a"},
                    {"role": "assistant", "toolCallList": {}},
                ]
            },
            "messages.1.toolCallList",
        ),
    ],
)
def test_native_tools_and_formats_are_unsupported_parameters(
    unit_client, master_auth, change, param
):
    body = {**NATIVE, **change}
    response = unit_client.post("/foundationModels/v1/completion", json=body, headers=master_auth)
    error = native_error(response, 400)
    assert (error["code"], error["param"], error["grpcCode"]) == ("unsupported_parameter", param, 3)
    assert error["model"] == NATIVE["modelUri"] and NATIVE["modelUri"] in error["message"]
    assert f"`{param}`" in error["message"] and "/v1/chat/completions" in error["message"]


def test_native_other_paths_are_json_404s(unit_client, master_auth):
    response = unit_client.post(
        "/foundationModels/v1/completionAsync", json=NATIVE, headers=master_auth
    )
    error = native_error(response, 404)
    assert error["code"] == "unknown_route"
