"""YandexGPT emulator: async operations, tokenizers, IAM tokens, the OpenAI-compatible surface."""

from __future__ import annotations

import json
import time

import requests

from providers.emulators import yandexgpt
from tests.unit.emulators.helpers import (
    API_KEY_HEADERS,
    FOLDER,
    TIMEOUT,
    bearer,
    running,
    yandex_body,
)

ASYNC = "/foundationModels/v1/completionAsync"
COMPLETION_TYPE = "type.googleapis.com/yandex.cloud.ai.foundation_models.v1.CompletionResponse"


def post(url: str, path: str, body: dict, headers: dict = API_KEY_HEADERS) -> requests.Response:
    return requests.post(url + path, json=body, headers=headers, timeout=TIMEOUT)


def get(url: str, path: str, headers: dict = API_KEY_HEADERS) -> requests.Response:
    return requests.get(url + path, headers=headers, timeout=TIMEOUT)


def test_async_operation_is_pending_then_done(yandex_config, yandex):
    submitted = post(yandex, ASYNC, yandex_body("async hello"))
    assert submitted.status_code == 200
    operation = submitted.json()
    assert operation["done"] is False
    assert {"id", "description", "createdAt", "createdBy", "modifiedAt"} <= set(operation)
    assert "result" not in operation and "response" not in operation
    assert get(yandex, f"/operations/{operation['id']}").json()["done"] is False
    time.sleep(yandex_config.operation_delay + 0.1)
    done = get(yandex, f"/operations/{operation['id']}").json()
    assert done["done"] is True
    response = done["response"]
    assert response["@type"] == COMPLETION_TYPE
    assert "async hello" in response["alternatives"][0]["message"]["text"]
    assert isinstance(response["usage"]["totalTokens"], str)
    sync = post(yandex, "/foundationModels/v1/completion", yandex_body("async hello")).json()
    assert response["alternatives"] == sync["result"]["alternatives"]


def test_unknown_operation_is_404(yandex):
    response = get(yandex, "/operations/d7qnosuchoperation00")
    assert response.status_code == 404
    assert response.json()["error"]["grpcCode"] == 5


def test_cancel_finishes_a_pending_operation_with_an_error(yandex):
    operation = post(yandex, ASYNC, yandex_body()).json()
    cancelled = get(yandex, f"/operations/{operation['id']}:cancel").json()
    assert cancelled["done"] is True
    assert cancelled["error"]["code"] == 1


def test_tokenize_returns_string_ids_and_matches_usage(yandex):
    body = {"modelUri": f"gpt://{FOLDER}/yandexgpt-lite/latest", "text": "ping pong"}
    tokens = post(yandex, "/foundationModels/v1/tokenize", body).json()
    assert tokens["modelVersion"] == "09.02.2025"
    assert tokens["tokens"][0] == {"id": tokens["tokens"][0]["id"], "text": "<s>", "special": True}
    assert all(isinstance(t["id"], str) for t in tokens["tokens"])
    assert all("special" not in t for t in tokens["tokens"][1:])
    completion = yandex_body("ping pong")
    prompt = post(yandex, "/foundationModels/v1/tokenizeCompletion", completion).json()
    usage = post(yandex, "/foundationModels/v1/completion", completion).json()["result"]["usage"]
    assert usage["inputTextTokens"] == str(len(prompt["tokens"]))


def test_iam_token_is_issued_accepted_and_expires():
    config = yandexgpt.YandexEmulatorConfig(iam_token_ttl=0.5)
    with running(yandexgpt.create_app(config)) as url:
        issued = post(url, "/iam/v1/tokens", {"yandexPassportOauthToken": "emu-oauth-token"}, {})
        assert issued.status_code == 200
        token = issued.json()
        assert token["iamToken"].startswith("t1.")
        assert token["expiresAt"].endswith("Z")
        completion = yandex_body()
        path = "/foundationModels/v1/completion"
        assert post(url, path, completion, bearer(token["iamToken"])).status_code == 200
        time.sleep(0.6)
        expired = post(url, path, completion, bearer(token["iamToken"]))
        assert expired.status_code == 401
        assert "expired" in expired.json()["error"]["message"]


def test_iam_token_refused_for_unknown_oauth_token(yandex):
    refused = post(yandex, "/iam/v1/tokens", {"yandexPassportOauthToken": "nope"}, {})
    assert refused.status_code == 401


def test_expired_api_key_is_401():
    config = yandexgpt.YandexEmulatorConfig(expired_api_keys={"old-key"})
    with running(yandexgpt.create_app(config)) as url:
        response = post(url, "/foundationModels/v1/completion", yandex_body(), bearer("old-key"))
    assert response.json()["error"]["message"] == "The apikey has expired"


def test_openai_models_list_every_branch(yandex):
    headers = {**API_KEY_HEADERS, "OpenAI-Project": FOLDER}
    models = get(yandex, "/v1/models", headers).json()
    ids = {m["id"] for m in models["data"]}
    assert models["object"] == "list"
    assert {f"gpt://{FOLDER}/yandexgpt/rc", f"gpt://{FOLDER}/yandexgpt-lite/latest"} <= ids


def test_openai_chat_completion_uses_numbers(yandex):
    body = {
        "model": f"gpt://{FOLDER}/yandexgpt/latest",
        "messages": [{"role": "user", "content": "openai style please"}],
        "max_tokens": 500,
    }
    completion = post(yandex, "/v1/chat/completions", body, bearer("emu-yandex-key")).json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert "openai style please" in completion["choices"][0]["message"]["content"]
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(usage["total_tokens"], int)


def test_openai_chat_stream_is_sse(yandex):
    body = {
        "model": f"gpt://{FOLDER}/yandexgpt/latest",
        "messages": [{"role": "user", "content": "stream it"}],
        "stream": True,
    }
    response = post(yandex, "/v1/chat/completions", body)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert "stream it" in text


def test_operation_is_404_after_its_retention():
    config = yandexgpt.YandexEmulatorConfig(operation_delay=0, operation_retention=0.3)
    with running(yandexgpt.create_app(config)) as url:
        operation = post(url, ASYNC, yandex_body()).json()
        assert get(url, f"/operations/{operation['id']}").json()["done"] is True
        time.sleep(0.4)
        assert get(url, f"/operations/{operation['id']}").status_code == 404
