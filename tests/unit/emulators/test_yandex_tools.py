"""YandexGPT emulator: tool calls on the native API (object arguments) and the OpenAI surface."""

from __future__ import annotations

import json

import jsonschema
import requests

from tests.unit.emulators.helpers import API_KEY_HEADERS, FOLDER, TIMEOUT, yandex_body

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    },
}


def complete(body: dict, url: str) -> dict:
    response = requests.post(
        url + "/foundationModels/v1/completion", json=body, headers=API_KEY_HEADERS, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]["alternatives"][0]


def test_tool_named_in_the_prompt_is_called_with_object_arguments(yandex):
    body = {**yandex_body("use get_weather for Moscow"), "tools": [{"function": WEATHER}]}
    alternative = complete(body, yandex)
    assert alternative["status"] == "ALTERNATIVE_STATUS_TOOL_CALLS"
    call = alternative["message"]["toolCallList"]["toolCalls"][0]["functionCall"]
    assert call["name"] == "get_weather"
    assert call["arguments"] == {"city": "use get_weather for", "days": 1.0}
    assert "text" not in alternative["message"]


def test_tool_choice_controls_the_call(yandex):
    tools = [{"function": WEATHER}]
    required = {**yandex_body("hello"), "tools": tools, "toolChoice": {"mode": "REQUIRED"}}
    assert complete(required, yandex)["status"] == "ALTERNATIVE_STATUS_TOOL_CALLS"
    never = {**yandex_body("get_weather"), "tools": tools, "toolChoice": {"mode": "NONE"}}
    assert complete(never, yandex)["status"] == "ALTERNATIVE_STATUS_FINAL"
    unprompted = {**yandex_body("hello"), "tools": tools}
    assert complete(unprompted, yandex)["status"] == "ALTERNATIVE_STATUS_FINAL"


def test_a_tool_result_gets_a_text_answer(yandex):
    body = yandex_body("use get_weather for Moscow")
    call = {"functionCall": {"name": "get_weather", "arguments": {"city": "Moscow"}}}
    result = {"functionResult": {"name": "get_weather", "content": "sunny"}}
    body["messages"] += [
        {"role": "assistant", "toolCallList": {"toolCalls": [call]}},
        {"role": "user", "toolResultList": {"toolResults": [result]}},
    ]
    body["tools"] = [{"function": WEATHER}]
    assert complete(body, yandex)["status"] == "ALTERNATIVE_STATUS_FINAL"


def test_malformed_tools_are_400(yandex):
    body = {**yandex_body(), "tools": [{"name": "x"}]}
    response = requests.post(
        yandex + "/foundationModels/v1/completion",
        json=body,
        headers=API_KEY_HEADERS,
        timeout=TIMEOUT,
    )
    assert response.status_code == 400


def test_openai_surface_returns_string_arguments(yandex):
    body = {
        "model": f"gpt://{FOLDER}/yandexgpt/latest",
        "messages": [{"role": "user", "content": "call get_weather please"}],
        "tools": [{"type": "function", "function": WEATHER}],
    }
    response = requests.post(
        yandex + "/v1/chat/completions", json=body, headers=API_KEY_HEADERS, timeout=TIMEOUT
    ).json()
    choice = response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"])["days"] == 1.0


def test_a_tool_result_is_echoed_in_the_answer(yandex):
    body = yandex_body("use get_weather for Moscow")
    call = {"functionCall": {"name": "get_weather", "arguments": {"city": "Moscow"}}}
    result = {"functionResult": {"name": "get_weather", "content": "ясно плюс три"}}
    body["messages"] += [
        {"role": "assistant", "toolCallList": {"toolCalls": [call]}},
        {"role": "user", "toolResultList": {"toolResults": [result]}},
    ]
    assert "ясно плюс три" in complete(body, yandex)["message"]["text"]


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "temp": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "kind": {"enum": ["sunny", "rain"]},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
    },
    "required": ["city", "temp", "tags", "kind", "where"],
    "additionalProperties": False,
}


def test_json_schema_answer_validates(yandex):
    body = {**yandex_body("Погода в Москве"), "jsonSchema": {"schema": SCHEMA}}
    alternative = complete(body, yandex)
    assert alternative["status"] == "ALTERNATIVE_STATUS_FINAL"
    jsonschema.validate(json.loads(alternative["message"]["text"]), SCHEMA)


def test_json_object_answer_is_an_object(yandex):
    body = {**yandex_body("Погода в Москве"), "jsonObject": True}
    value = json.loads(complete(body, yandex)["message"]["text"])
    assert isinstance(value, dict) and "Погода в Москве" in value["answer"]


def test_json_object_and_schema_together_are_400(yandex):
    body = {**yandex_body(), "jsonObject": True, "jsonSchema": {"schema": SCHEMA}}
    response = requests.post(
        yandex + "/foundationModels/v1/completion",
        json=body,
        headers=API_KEY_HEADERS,
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
