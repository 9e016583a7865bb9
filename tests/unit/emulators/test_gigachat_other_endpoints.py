"""GigaChat emulator: models, token counts, embeddings, balance, token expiry, scopes, functions."""

from __future__ import annotations

import json
import time

import requests

from providers.emulators import gigachat, gigachat_wire
from tests.unit.emulators.helpers import TIMEOUT, bearer, giga_body, oauth, running


def get(url: str, path: str, token: str) -> requests.Response:
    return requests.get(url + path, headers=bearer(token), timeout=TIMEOUT)


def post(url: str, path: str, token: str, body: dict) -> requests.Response:
    return requests.post(url + path, json=body, headers=bearer(token), timeout=TIMEOUT)


def test_models_list_and_lookup(giga, giga_token):
    listing = get(giga, "/api/v1/models", giga_token).json()
    assert listing["object"] == "list"
    by_id = {m["id"]: m for m in listing["data"]}
    for name in ("GigaChat", "GigaChat-Pro", "GigaChat-Max", "GigaChat-2"):
        assert by_id[name] == {
            "id": name,
            "object": "model",
            "owned_by": "salutedevices",
            "type": "chat",
        }
        assert by_id[name + "-preview"]["type"] == "chat"
    assert by_id["Embeddings"]["type"] == "embedder"
    assert get(giga, "/api/v1/models/GigaChat-Max", giga_token).json()["id"] == "GigaChat-Max"
    missing = get(giga, "/api/v1/models/GigaChat-9000", giga_token)
    assert (missing.status_code, missing.json()) == (
        404,
        {"status": 404, "message": "No such model"},
    )


def test_tokens_count_agrees_with_chat_usage(giga, giga_token):
    texts = ["First text", "Привет, мир! Как дела?"]
    counts = post(
        giga, "/api/v1/tokens/count", giga_token, {"model": "GigaChat", "input": texts}
    ).json()
    assert [c["object"] for c in counts] == ["tokens", "tokens"]
    assert [c["characters"] for c in counts] == [len(t) for t in texts]
    usage = post(giga, "/api/v1/chat/completions", giga_token, giga_body(texts[1])).json()["usage"]
    overhead = gigachat_wire.MESSAGE_OVERHEAD
    assert usage["prompt_tokens"] == counts[1]["tokens"] + overhead


def test_embeddings_have_fixed_dimension_and_are_deterministic(giga, giga_token):
    body = {"model": "Embeddings", "input": ["кошка", "собака", "кошка"]}
    result = post(giga, "/api/v1/embeddings", giga_token, body).json()
    assert result["object"] == "list" and result["model"] == "Embeddings"
    vectors = [item["embedding"] for item in result["data"]]
    assert [len(v) for v in vectors] == [1024] * 3
    assert vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1) < 1e-3
    assert result["data"][1]["usage"]["prompt_tokens"] > 0
    chat_model = post(giga, "/api/v1/embeddings", giga_token, {"model": "GigaChat", "input": ["x"]})
    assert chat_model.status_code == 404


def test_balance_for_prepaid_scopes_only(giga, giga_token):
    balance = get(giga, "/api/v1/balance", giga_token).json()["balance"]
    assert {"usage": "GigaChat-Pro", "value": 991490} in balance
    corp = oauth(giga, scope="GIGACHAT_API_CORP").json()["access_token"]
    assert get(giga, "/api/v1/balance", corp).status_code == 403


def test_token_expires_after_ttl():
    config = gigachat.GigaChatEmulatorConfig(token_ttl=0.5)
    with running(gigachat.create_app(config)) as url:
        token = oauth(url).json()
        assert token["expires_at"] - time.time() * 1000 < 1000
        assert get(url, "/api/v1/models", token["access_token"]).status_code == 200
        time.sleep(0.6)
        expired = get(url, "/api/v1/models", token["access_token"])
    assert (expired.status_code, expired.json()) == (
        401,
        {"status": 401, "message": "Unauthorized"},
    )


def test_scope_not_held_by_the_key_is_refused():
    config = gigachat.GigaChatEmulatorConfig(scopes={"GIGACHAT_API_B2B"})
    with running(gigachat.create_app(config)) as url:
        refused = oauth(url, scope="GIGACHAT_API_PERS")
        malformed = oauth(url, scope="EVERYTHING")
    assert (refused.status_code, refused.json()["code"]) == (400, 7)
    assert (malformed.status_code, malformed.json()["code"]) == (400, 1)


def test_function_call_returns_object_arguments(giga, giga_token):
    weather = {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    }
    body = giga_body("call get_weather for Moscow", functions=[weather])
    choice = post(giga, "/api/v1/chat/completions", giga_token, body).json()["choices"][0]
    assert choice["finish_reason"] == "function_call"
    call = choice["message"]["function_call"]
    assert call["name"] == "get_weather"
    assert isinstance(call["arguments"], dict) and call["arguments"]["days"] == 1
    assert choice["message"]["functions_state_id"]
    body["function_call"] = "none"
    plain = post(giga, "/api/v1/chat/completions", giga_token, body).json()["choices"][0]
    assert plain["finish_reason"] == "stop"


def test_function_result_is_answered_in_text_echoing_it(giga, giga_token):
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    body = giga_body("call get_weather for Moscow", functions=[weather])
    call = {"name": "get_weather", "arguments": {}}
    body["messages"] += [
        {"role": "assistant", "content": "", "function_call": call},
        {"role": "function", "name": "get_weather", "content": '{"temp": "плюс три"}'},
    ]
    choice = post(giga, "/api/v1/chat/completions", giga_token, body).json()["choices"][0]
    assert choice["finish_reason"] == "stop"  # the prompt still names it: no second call
    assert "плюс три" in choice["message"]["content"]


def test_json_object_response_format(giga, giga_token):
    body = giga_body("Погода в Москве", response_format={"type": "json_object"})
    choice = post(giga, "/api/v1/chat/completions", giga_token, body).json()["choices"][0]
    assert "Погода в Москве" in json.loads(choice["message"]["content"])["answer"]
    body["response_format"] = {"type": "json_schema"}
    assert post(giga, "/api/v1/chat/completions", giga_token, body).status_code == 422


def test_oauth_rate_limit_when_enabled():
    config = gigachat.GigaChatEmulatorConfig(oauth_rate_limit=3)
    with running(gigachat.create_app(config)) as url:
        statuses = [oauth(url).status_code for _ in range(5)]
        time.sleep(1.05)
        after_a_second = oauth(url).status_code
    assert statuses == [200, 200, 200, 429, 429]
    assert after_a_second == 200
