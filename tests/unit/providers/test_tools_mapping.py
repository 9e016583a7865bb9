"""Tools and structured output through both adapters, against the recorded wire shapes
(docs/provider-apis.md §1.4–1.5 and §2.3–2.5): what goes out, and what comes back."""

from __future__ import annotations

import json
import time

import pytest

from providers.base import (
    CompletionRequest,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
)
from providers.errors import BadRequest, MalformedResponse
from providers.gigachat import GigaChatProvider
from providers.gigachat import parse_stream as giga_stream
from providers.yandexgpt import YandexGPTProvider
from providers.yandexgpt import parse_stream as yandex_stream
from tests.unit.providers.conftest import (
    FOLDER,
    GIGA,
    GIGA_AUTH,
    YANDEX,
    giga_config,
    yandex_config,
)

COMPLETION = f"{YANDEX}/foundationModels/v1/completion"
CHAT = f"{GIGA}/chat/completions"
WEATHER = Tool(
    "get_weather",
    "Weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
STATE_ID = "3f1c2a7e-9b1d-4c2e-8f00-0123456789ab"
# A conversation after one round trip: the call, its result, and the user's next turn.
HISTORY = (
    Message("user", "Погода в Москве?"),
    Message("assistant", "", tool_calls=(ToolCall(STATE_ID, "get_weather", {"city": "Москва"}),)),
    Message("tool", '{"temp": 3}', tool_call_id=STATE_ID, name="get_weather"),
)


def request(**kw) -> CompletionRequest:
    base = {"upstream_model": "m", "messages": HISTORY, "tools": (WEATHER,)}
    return CompletionRequest(**(base | kw))


# -- YandexGPT -----------------------------------------------------------------------------


@pytest.fixture()
def yandex():
    return YandexGPTProvider(yandex_config(api_key="k"))


def test_yandex_body_carries_tools_choice_and_results(yandex):
    body = yandex.completion_body(
        request(tool_choice=ToolChoice("required"), parallel_tool_calls=False)
    )
    assert body["tools"] == [
        {
            "function": {
                "name": "get_weather",
                "parameters": WEATHER.parameters,
                "description": "Weather in a city",
            }
        }
    ]
    assert body["toolChoice"] == {"mode": "REQUIRED"}
    assert body["parallelToolCalls"] is False
    assert body["messages"] == [
        {"role": "user", "text": "Погода в Москве?"},
        {
            "role": "assistant",
            "toolCallList": {
                "toolCalls": [
                    {"functionCall": {"name": "get_weather", "arguments": {"city": "Москва"}}}
                ]
            },
        },
        {
            "role": "user",
            "toolResultList": {
                "toolResults": [
                    {"functionResult": {"name": "get_weather", "content": '{"temp": 3}'}}
                ]
            },
        },
    ]


def test_yandex_groups_results_and_keeps_text_beside_calls(yandex):
    calls = (ToolCall("a", "f", {}), ToolCall("b", "g", {"x": 1}))
    messages = (
        Message("user", "go"),
        Message("assistant", "Calling both.", tool_calls=calls),
        Message("tool", "1", tool_call_id="a", name="f"),
        Message("tool", "2", tool_call_id="b", name="g"),
    )
    wire = yandex.completion_body(request(messages=messages))["messages"]
    assert [sorted(m) for m in wire] == [
        ["role", "text"],
        ["role", "text"],
        ["role", "toolCallList"],
        ["role", "toolResultList"],
    ]
    assert wire[1]["text"] == "Calling both."
    results = wire[3]["toolResultList"]["toolResults"]
    assert [r["functionResult"]["name"] for r in results] == ["f", "g"]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("auto", "get_weather"), {"functionName": "get_weather"}),
    ],
)
def test_yandex_tool_choice(yandex, choice, wire):
    assert yandex.completion_body(request(tool_choice=choice))["toolChoice"] == wire


def test_yandex_response_formats(yandex):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    as_object = yandex.completion_body(request(response_format=ResponseFormat("json_object")))
    as_schema = yandex.completion_body(
        request(response_format=ResponseFormat("json_schema", schema, "x"))
    )
    plain = yandex.completion_body(request(response_format=ResponseFormat("text")))
    assert as_object["jsonObject"] is True and "jsonSchema" not in as_object
    assert as_schema["jsonSchema"] == {"schema": schema} and "jsonObject" not in as_schema
    assert "jsonObject" not in plain and "jsonSchema" not in plain


def tool_call_answer(arguments: dict) -> dict:
    call = {"functionCall": {"name": "get_weather", "arguments": arguments}}
    return {
        "alternatives": [
            {
                "message": {"role": "assistant", "toolCallList": {"toolCalls": [call]}},
                "status": "ALTERNATIVE_STATUS_TOOL_CALLS",
            }
        ],
        "usage": {"inputTextTokens": "40", "completionTokens": "9", "totalTokens": "49"},
        "modelVersion": "22.05.2025",
    }


def test_yandex_tool_call_answer(rsps, yandex):
    # Recorded: integer arguments come back as floats.
    rsps.post(COMPLETION, json={"result": tool_call_answer({"city": "Москва", "days": 5.0})})
    result = yandex.complete(request(messages=HISTORY[:1]))
    assert result.finish_reason == "tool_calls"
    assert result.content == ""
    [call] = result.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "Москва", "days": 5}
    assert isinstance(call.arguments["days"], int)
    assert call.id.startswith("call_") and len(call.id) > 10
    sent = json.loads(rsps.calls[-1].request.body)
    assert sent["modelUri"] == f"gpt://{FOLDER}/m" and sent["tools"]


def test_yandex_tool_calls_without_calls_is_malformed(rsps, yandex):
    body = tool_call_answer({})
    body["alternatives"][0]["message"] = {"role": "assistant", "text": ""}
    rsps.post(COMPLETION, json={"result": body})
    with pytest.raises(MalformedResponse):
        yandex.complete(request())


def test_yandex_stream_ends_with_the_calls():
    partial = {
        "alternatives": [
            {"message": {"role": "assistant", "text": ""}, "status": "ALTERNATIVE_STATUS_PARTIAL"}
        ],
        "usage": {"inputTextTokens": "40", "completionTokens": "0", "totalTokens": "40"},
        "modelVersion": "22.05.2025",
    }
    lines = [
        json.dumps({"result": partial}),
        json.dumps({"result": tool_call_answer({"days": 2.0})}),
    ]
    [final] = list(yandex_stream(lines, (WEATHER,)))
    assert final.finish_reason == "tool_calls" and final.delta == ""
    assert [(c.name, c.arguments) for c in final.tool_calls] == [("get_weather", {"days": 2})]
    assert final.usage is not None and final.usage.total_tokens == 49


# -- GigaChat ------------------------------------------------------------------------------


@pytest.fixture()
def giga(rsps):
    expires = int((time.time() + 1800) * 1000)
    rsps.post(GIGA_AUTH, json={"access_token": "tok-1", "expires_at": expires})
    return GigaChatProvider(giga_config())


def test_giga_body_carries_functions_and_results(giga):
    body = giga.completion_body(request(tool_choice=ToolChoice("auto", "get_weather")))
    assert body["functions"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": WEATHER.parameters,
        }
    ]
    assert body["function_call"] == {"name": "get_weather"}
    assert body["messages"] == [
        {"role": "user", "content": "Погода в Москве?"},
        {
            "role": "assistant",
            "content": "",
            "function_call": {"name": "get_weather", "arguments": {"city": "Москва"}},
            "functions_state_id": STATE_ID,
        },
        {"role": "function", "name": "get_weather", "content": '{"temp": 3}'},
    ]


def test_giga_plain_text_result_is_wrapped_as_an_object(giga):
    messages = (
        Message("user", "go"),
        Message("assistant", "", tool_calls=(ToolCall("call_x", "f", {}),)),
        Message("tool", "sunny", tool_call_id="call_x", name="f"),
    )
    wire = giga.completion_body(request(messages=messages))["messages"]
    assert "functions_state_id" not in wire[1]  # not one of GigaChat's ids
    assert json.loads(wire[2]["content"]) == {"result": "sunny"}


def test_giga_several_calls_are_paired_with_their_results(giga):
    calls = (ToolCall("a", "f", {}), ToolCall("b", "g", {}))
    messages = (
        Message("user", "go"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", '{"v": 1}', tool_call_id="a", name="f"),
        Message("tool", '{"v": 2}', tool_call_id="b", name="g"),
        Message("user", "and?"),
    )
    wire = giga.completion_body(request(messages=messages))["messages"]
    shape = [(m["role"], m.get("name") or m.get("function_call", {}).get("name")) for m in wire]
    assert shape == [
        ("user", None),
        ("assistant", "f"),
        ("function", "f"),
        ("assistant", "g"),
        ("function", "g"),
        ("user", None),
    ]


def test_giga_tool_choice_modes(giga):
    assert giga.completion_body(request(tool_choice=ToolChoice("none")))["function_call"] == "none"
    required = giga.completion_body(request(tool_choice=ToolChoice("required")))
    assert required["function_call"] == {"name": "get_weather"}  # the one tool, by name
    two = (WEATHER, Tool("other"))
    with pytest.raises(BadRequest):
        giga.completion_body(request(tools=two, tool_choice=ToolChoice("required")))


def test_giga_response_formats(giga):
    body = giga.completion_body(request(response_format=ResponseFormat("json_object")))
    assert body["response_format"] == {"type": "json_object"}
    with pytest.raises(BadRequest):
        giga.completion_body(request(response_format=ResponseFormat("json_schema", {})))


def function_call_answer() -> dict:
    message = {
        "role": "assistant",
        "content": "",
        "function_call": {"name": "get_weather", "arguments": {"city": "Москва"}},
        "functions_state_id": STATE_ID,
    }
    return {
        "choices": [{"message": message, "index": 0, "finish_reason": "function_call"}],
        "created": 1,
        "model": "GigaChat-Pro:2.0.28.2",
        "object": "chat.completion",
        "usage": {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58},
    }


def test_giga_function_call_answer(rsps, giga):
    rsps.post(CHAT, json=function_call_answer())
    result = giga.complete(request(messages=HISTORY[:1]))
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (ToolCall(STATE_ID, "get_weather", {"city": "Москва"}),)
    assert result.model_version == "2.0.28.2"


def test_giga_stream_carries_the_call_to_the_final_chunk():
    def event(delta: dict, finish: str | None = None) -> str:
        choice = {"delta": delta, "index": 0} | ({"finish_reason": finish} if finish else {})
        data = {"choices": [choice], "model": "GigaChat-Pro:2.0.28.2"}
        if finish:
            data["usage"] = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        return "data: " + json.dumps(data)

    call = {"name": "get_weather", "arguments": {"city": "Тверь"}}
    first = {
        "role": "assistant",
        "content": "",
        "function_call": call,
        "functions_state_id": STATE_ID,
    }
    lines = [event(first), event({"content": ""}, "function_call"), "data: [DONE]"]
    [final] = list(giga_stream(lines))
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls == (ToolCall(STATE_ID, "get_weather", {"city": "Тверь"}),)
    without_call = [event({"content": ""}, "function_call"), "data: [DONE]"]
    with pytest.raises(MalformedResponse):
        list(giga_stream(without_call))


def test_yandex_async_completion_keeps_the_tool_calls(rsps):
    from tests.unit.providers.conftest import YANDEX_OPS

    provider = YandexGPTProvider(
        yandex_config(api_key="k", async_threshold_tokens=1, async_poll_interval=0.01)
    )
    rsps.post(f"{YANDEX}/foundationModels/v1/completionAsync", json={"id": "op1", "done": False})
    operation = {
        "id": "op1",
        "done": True,
        "response": tool_call_answer({"city": "Тверь", "days": 3.0}),
    }
    rsps.get(f"{YANDEX_OPS}/operations/op1", json=operation)
    result = provider.complete(request(messages=HISTORY[:1]))
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Тверь", "days": 3})
    ]
    sent = json.loads(rsps.calls[0].request.body)
    assert sent["tools"][0]["function"]["name"] == "get_weather"
