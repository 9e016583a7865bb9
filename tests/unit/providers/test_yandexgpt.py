"""YandexGPT adapter: parameter mapping, normalization and every error shape."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from providers.base import CompletionRequest, Message
from providers.errors import (
    AuthError,
    BadRequest,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ModelNotFound,
    ProviderConnectionError,
    ProviderTimeout,
    RateLimited,
    UpstreamServerError,
)
from providers.yandexgpt import YandexGPTProvider
from tests.unit.providers.conftest import FOLDER, YANDEX, yandex_config

COMPLETION = f"{YANDEX}/foundationModels/v1/completion"
REQUEST = CompletionRequest(
    upstream_model="yandexgpt-lite/latest",
    messages=(Message("system", "Be brief."), Message("user", "Привет")),
    temperature=0.3,
    max_tokens=1000,
)


def answer(status="ALTERNATIVE_STATUS_FINAL", text="Здравствуйте!", usage=None):
    usage = usage or {"inputTextTokens": "19", "completionTokens": "7", "totalTokens": "26"}
    return {
        "result": {
            "alternatives": [{"message": {"role": "assistant", "text": text}, "status": status}],
            "usage": usage,
            "modelVersion": "23.10.2024",
        }
    }


def envelope(http_code, message, grpc_code=3):
    return {
        "error": {
            "grpcCode": grpc_code,
            "httpCode": http_code,
            "message": message,
            "httpStatus": "x",
            "details": [],
        }
    }


@pytest.fixture()
def provider():
    return YandexGPTProvider(yandex_config(api_key="yc-key"))


def sent(call) -> dict:
    return json.loads(call.request.body)


# -- request mapping ---------------------------------------------------------------------------


def test_request_body_matches_the_wire_format(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    provider.complete(REQUEST)
    body = sent(rsps.calls[0])
    assert body == {
        "modelUri": f"gpt://{FOLDER}/yandexgpt-lite/latest",
        "completionOptions": {"stream": False, "temperature": 0.3, "maxTokens": "1000"},
        "messages": [
            {"role": "system", "text": "Be brief."},
            {"role": "user", "text": "Привет"},
        ],
    }


def test_temperature_above_the_upstream_range_is_sent_as_one(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    provider.complete(dataclasses.replace(REQUEST, temperature=1.7))
    assert sent(rsps.calls[0])["completionOptions"]["temperature"] == 1.0


def test_unset_options_are_left_out_and_full_uris_pass_through(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    uri = "gpt://other/yandexgpt/rc"
    provider.complete(CompletionRequest(uri, (Message("user", "hi"),)))
    body = sent(rsps.calls[0])
    assert body["modelUri"] == uri
    assert body["completionOptions"] == {"stream": False}


def test_headers_timeout_and_request_id(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    provider.complete(CompletionRequest("yandexgpt/rc", REQUEST.messages, request_id="req-1"))
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == "Api-Key yc-key"
    assert request.headers["x-client-request-id"] == "req-1"
    assert request.req_kwargs["timeout"] == (2.0, 7.0)


def test_data_logging_opt_out(rsps):
    rsps.post(COMPLETION, json=answer())
    config = yandex_config(api_key="k", data_logging=False)
    YandexGPTProvider(config).complete(REQUEST)
    assert rsps.calls[0].request.headers["x-data-logging-enabled"] == "false"


def test_data_logging_header_absent_by_default(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    provider.complete(REQUEST)
    assert "x-data-logging-enabled" not in rsps.calls[0].request.headers


def test_missing_folder_is_a_bad_request():
    provider = YandexGPTProvider(yandex_config(api_key="k", folder_id=None))
    with pytest.raises(BadRequest, match="FOLDER_ID"):
        provider.complete(REQUEST)


# -- normalization -----------------------------------------------------------------------------


def test_int64_strings_are_normalized(rsps, provider):
    rsps.post(COMPLETION, json=answer())
    result = provider.complete(REQUEST)
    assert result.content == "Здравствуйте!"
    assert result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (19, 7)
    assert result.usage.total_tokens == 26
    assert result.model_version == "23.10.2024"
    assert result.upstream_model == "yandexgpt-lite/latest"


def test_missing_total_is_the_sum(rsps, provider):
    usage = {"inputTextTokens": "3", "completionTokens": "4", "completionTokensDetails": {}}
    rsps.post(COMPLETION, json=answer(usage=usage))
    assert provider.complete(REQUEST).usage.total_tokens == 7


@pytest.mark.parametrize(
    ("status", "finish"),
    [
        ("ALTERNATIVE_STATUS_FINAL", "stop"),
        ("ALTERNATIVE_STATUS_TRUNCATED_FINAL", "length"),
        ("ALTERNATIVE_STATUS_TOOL_CALLS", "tool_calls"),
    ],
)
def test_finish_reasons(rsps, provider, status, finish):
    body = answer(status=status)
    if finish == "tool_calls":  # the recorded shape: the message is a toolCallList
        calls = {"toolCalls": [{"functionCall": {"name": "f", "arguments": {}}}]}
        body["result"]["alternatives"][0]["message"] = {"role": "assistant", "toolCallList": calls}
    rsps.post(COMPLETION, json=body)
    assert provider.complete(REQUEST).finish_reason == finish


def test_content_filter_raises_content_filtered(rsps, provider):
    rsps.post(COMPLETION, json=answer(status="ALTERNATIVE_STATUS_CONTENT_FILTER", text="Нет."))
    with pytest.raises(ContentFiltered) as info:
        provider.complete(REQUEST)
    assert not info.value.retryable
    assert info.value.reason == "content_filtered"


@pytest.mark.parametrize(
    "payload",
    [
        {"alternatives": []},  # no `result` wrapper
        {"result": {"alternatives": []}},
        {"result": {"alternatives": [{"status": "ALTERNATIVE_STATUS_PARTIAL"}]}},
        {
            "result": {
                "alternatives": [{"message": {"text": "x"}, "status": "FINAL"}],
                "usage": {"inputTextTokens": "many"},
            }
        },
        [],
    ],
)
def test_unexpected_shapes_are_malformed(rsps, provider, payload):
    rsps.post(COMPLETION, json=payload)
    with pytest.raises(MalformedResponse):
        provider.complete(REQUEST)


def test_non_json_success_is_malformed(rsps, provider):
    rsps.post(COMPLETION, body="<html>gateway</html>", status=200)
    with pytest.raises(MalformedResponse) as info:
        provider.complete(REQUEST)
    assert info.value.retryable


# -- errors ------------------------------------------------------------------------------------

CONTEXT_MESSAGE = (
    "Error in session internal_id=1&request_id=2&folder_id=b1g: "
    "number of input tokens must be no more than 8192, got 9136"
)


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, CONTEXT_MESSAGE, ContextTooLong),
        (400, "Failed to parse model URI", BadRequest),
        (400, "Model yandexgpt-huge/latest not found: invalid model_uri", ModelNotFound),
        (401, "The apikey has expired", AuthError),
        (403, "Permission denied", AuthError),
        (404, "Not found", ModelNotFound),
        (500, "Internal", UpstreamServerError),
        (501, "Unimplemented", BadRequest),
        (503, "Unavailable", UpstreamServerError),
        (504, "Deadline exceeded", UpstreamServerError),
    ],
)
def test_error_envelope_classification(rsps, provider, status, message, expected):
    rsps.post(COMPLETION, json=envelope(status, message), status=status)
    with pytest.raises(expected) as info:
        provider.complete(REQUEST)
    assert info.value.status == status
    assert message in info.value.message
    assert len(rsps.calls) == 1  # no retries inside the adapter


def test_429_without_retry_after(rsps, provider):
    quota = "ai.textGenerationCompletionSessionsCount.count gauge quota limit exceed"
    rsps.post(COMPLETION, json=envelope(429, quota, 8), status=429)
    with pytest.raises(RateLimited) as info:
        provider.complete(REQUEST)
    assert info.value.retry_after is None
    assert info.value.retryable


def test_429_with_retry_after(rsps, provider):
    rsps.post(COMPLETION, json=envelope(429, "q", 8), status=429, headers={"Retry-After": "12"})
    with pytest.raises(RateLimited) as info:
        provider.complete(REQUEST)
    assert info.value.retry_after == 12.0


def test_error_without_json_body(rsps, provider):
    rsps.post(COMPLETION, body="<html>Bad Gateway</html>", status=502)
    with pytest.raises(UpstreamServerError, match="Bad Gateway"):
        provider.complete(REQUEST)


def test_upstream_echo_of_the_key_is_redacted(rsps, provider):
    rsps.post(COMPLETION, json=envelope(401, "Unknown api key 'yc-key'", 16), status=401)
    with pytest.raises(AuthError) as info:
        provider.complete(REQUEST)
    assert "yc-key" not in str(info.value)
    assert len(rsps.calls) == 1  # an API key is not refreshable: no retry


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ReadTimeout(), ProviderTimeout),
        (requests.ConnectTimeout(), ProviderTimeout),
        (requests.ConnectionError(), ProviderConnectionError),
    ],
)
def test_transport_errors(rsps, provider, exc, expected):
    rsps.post(COMPLETION, body=exc)
    with pytest.raises(expected):
        provider.complete(REQUEST)


# -- tokens and models -------------------------------------------------------------------------


def test_count_tokens_uses_tokenize_completion(rsps, provider):
    tokens = [{"id": "1", "text": "<s>", "special": True}, {"id": "45533", "text": "▁ping"}]
    url = f"{YANDEX}/foundationModels/v1/tokenizeCompletion"
    rsps.post(url, json={"tokens": tokens, "modelVersion": "07.03.2024"})
    assert provider.count_tokens("yandexgpt/latest", REQUEST.messages) == 2
    body = sent(rsps.calls[0])
    assert body["modelUri"] == f"gpt://{FOLDER}/yandexgpt/latest"
    assert body["messages"][1] == {"role": "user", "text": "Привет"}


def test_list_models_sends_openai_project_and_strips_the_folder(rsps, provider):
    data = [
        {"id": f"gpt://{FOLDER}/yandexgpt/latest", "owned_by": "Yandex"},
        {"id": f"gpt://{FOLDER}/yandexgpt-lite/rc", "owned_by": "Yandex"},
    ]
    rsps.get(f"{YANDEX}/v1/models", json={"object": "list", "data": data})
    assert provider.list_models() == ["yandexgpt/latest", "yandexgpt-lite/rc"]
    assert rsps.calls[0].request.headers["OpenAI-Project"] == FOLDER


def test_list_models_errors_propagate(rsps, provider):
    rsps.get(f"{YANDEX}/v1/models", json=envelope(503, "down", 14), status=503)
    with pytest.raises(UpstreamServerError):
        provider.list_models()
