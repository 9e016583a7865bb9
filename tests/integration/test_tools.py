"""Tools and structured output end to end: the official `openai` SDK against the live API,
a real worker, and both emulators speaking the providers' native function-calling and
JSON-output wire formats.

A round trip is: the model calls a function (`finish_reason: tool_calls`, arguments that
validate against the function's schema), the client answers with a `tool` message, and the
model's text answer echoes that result — which it can only do if the result reached the
provider in its native form (Yandex `toolResultList`, GigaChat `function` message).
"""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import BaseModel

from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration

PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "the city"},
        "days": {"type": "integer", "description": "how many days ahead"},
    },
    "required": ["city", "days"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city",
        "parameters": PARAMETERS,
    },
}
ASK = [{"role": "user", "content": "Какая погода в Москве? Вызови get_weather."}]
RESULT = '{"forecast": "снег минус пять"}'
MODELS = ["yandexgpt-lite:latest", "GigaChat-Pro"]


@pytest.fixture()
def sdk(live_api):
    from openai import OpenAI

    return OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)


def check_call(call) -> dict:
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, PARAMETERS)
    assert isinstance(arguments["days"], int)  # Yandex sends 1.0: given back as an integer
    return arguments


def answer_to(message_with_calls: dict, call_id: str) -> list[dict]:
    tool = {"role": "tool", "tool_call_id": call_id, "content": RESULT}
    return [*ASK, message_with_calls, tool]


@pytest.mark.parametrize("model", MODELS)
def test_function_calling_round_trip(worker, sdk, model):
    first = sdk.chat.completions.create(model=model, messages=ASK, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    check_call(call)

    assistant = choice.message.model_dump(exclude_none=True)
    second = sdk.chat.completions.create(
        model=model, messages=answer_to(assistant, call.id), tools=[WEATHER]
    )
    assert second.choices[0].finish_reason == "stop"
    assert not second.choices[0].message.tool_calls
    assert "снег минус пять" in second.choices[0].message.content


@pytest.mark.parametrize("model", MODELS)
def test_function_calling_round_trip_streamed(worker, sdk, model):
    chunks = list(
        sdk.chat.completions.create(model=model, messages=ASK, tools=[WEATHER], stream=True)
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(deltas) == 1
    [call] = deltas[0].tool_calls
    assert call.index == 0
    check_call(call)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    assistant = {
        "role": "assistant",
        "tool_calls": [{"id": call.id, "type": "function", "function": call.function.model_dump()}],
    }
    with sdk.chat.completions.stream(
        model=model, messages=answer_to(assistant, call.id), tools=[WEATHER]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    assert "снег минус пять" in final.choices[0].message.content


def test_tool_choice_forces_a_named_function(worker, sdk):
    forced = {"type": "function", "function": {"name": "get_weather"}}
    ask = [{"role": "user", "content": "Привет"}]  # names no function
    for model in MODELS:
        reply = sdk.chat.completions.create(
            model=model, messages=ask, tools=[WEATHER], tool_choice=forced
        )
        assert reply.choices[0].finish_reason == "tool_calls", model
        check_call(reply.choices[0].message.tool_calls[0])
        plain = sdk.chat.completions.create(
            model=model, messages=ASK, tools=[WEATHER], tool_choice="none"
        )
        assert plain.choices[0].finish_reason == "stop", model


class Forecast(BaseModel):
    city: str
    days: int
    warm: bool
    tags: list[str]


def test_json_schema_output_parses_into_the_model(worker, sdk):
    reply = sdk.chat.completions.parse(
        model="yandexgpt-lite:latest",
        messages=[{"role": "user", "content": "Прогноз для Москвы"}],
        response_format=Forecast,
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    jsonschema.validate(json.loads(reply.choices[0].message.content), Forecast.model_json_schema())


@pytest.mark.parametrize("model", MODELS)
def test_json_object_output(worker, sdk, model):
    reply = sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Ответь в JSON"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


@pytest.mark.parametrize(
    ("model", "extra", "param"),
    [
        (
            "GigaChat-Pro",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format",
        ),
        ("yandexgpt-32k", {"tools": [WEATHER]}, "tools"),
        ("yandexgpt:deprecated", {"tools": [WEATHER]}, "tools"),
        ("yandexgpt-lite", {"stop": ["\n"]}, "stop"),
        (
            "GigaChat",
            {
                "tools": [WEATHER, {**WEATHER, "function": {"name": "other"}}],
                "tool_choice": "required",
            },
            "tool_choice",
        ),
    ],
)
def test_what_no_candidate_can_serve_is_400_unsupported_parameter(sdk, model, extra, param):
    import openai

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model=model, messages=ASK, **extra)
    error = raised.value.response.json()["error"]
    assert error["code"] == "unsupported_parameter"
    assert error["param"] == param
    assert model in error["message"] and f"`{param}`" in error["message"]
    assert {s["reason"] for s in error["skipped"]} == {"unsupported"}


def test_job_api_carries_tools_and_the_calls(worker, client, auth):
    body = {"model": "GigaChat", "messages": ASK, "tools": [WEATHER], "tool_choice": "required"}
    created = client.post("/v1/jobs", json=body, headers=auth)
    assert created.status_code == 202, created.get_json()
    job = client.get(f"/v1/jobs/{created.get_json()['id']}?wait=30", headers=auth).get_json()
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["finish_reason"] == "tool_calls"
    [call] = result["tool_calls"]
    assert call["name"] == "get_weather" and call["id"]
    jsonschema.validate(call["arguments"], PARAMETERS)  # an object on the job API

    reply = {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
            }
        ],
    }
    follow = {**body, "messages": answer_to(reply, call["id"])}
    del follow["tool_choice"]
    created = client.post("/v1/jobs", json=follow, headers=auth)
    assert created.status_code == 202, created.get_json()
    job = client.get(f"/v1/jobs/{created.get_json()['id']}?wait=30", headers=auth).get_json()
    assert job["status"] == "succeeded", job
    assert "снег минус пять" in job["result"]["content"] and job["result"]["tool_calls"] == []


def test_batch_lines_carry_tools_and_refuse_what_cannot_be_served(worker, client, auth, runtime):
    from tests.integration.test_batches import results, wait_for

    lines = [
        {"model": "yandexgpt-lite", "messages": ASK, "tools": [WEATHER]},
        {"model": "yandexgpt-lite", "messages": ASK, "stop": ["\n"]},
    ]
    body = "\n".join(
        json.dumps(
            {"custom_id": f"l{i}", "method": "POST", "url": "/v1/chat/completions", "body": b}
        )
        for i, b in enumerate(lines)
    )
    created = client.post(
        "/v1/batches", data=body, headers={**auth, "Content-Type": "application/jsonl"}
    )
    assert created.status_code == 201, created.get_json()
    batch_id = created.get_json()["id"]
    done = wait_for(client, auth, runtime, batch_id, ("completed", "failed", "expired"))
    assert done["request_counts"]["completed"] == 1 and done["request_counts"]["failed"] == 1
    [output] = results(client, auth, batch_id, "output")
    message = output["response"]["body"]["choices"][0]["message"]
    assert (
        output["custom_id"] == "l0"
        and message["tool_calls"][0]["function"]["name"] == "get_weather"
    )
    [error] = results(client, auth, batch_id, "errors")
    assert error["custom_id"] == "l1"
    assert error["error"]["code"] == "unsupported_parameter", error
