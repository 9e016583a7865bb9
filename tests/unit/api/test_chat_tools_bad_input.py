"""Tools and output formats on the chat endpoint: what cannot be served, or does not hold
together, is a 4xx naming the field — never a job that silently drops it."""

from __future__ import annotations

import pytest

from tests.unit.api.test_jobs_bad_input import assert_error, job_count

ASK = [{"role": "user", "content": "Погода в Москве?"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CHAT = "/v1/chat/completions"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stop": "\n"}, "stop"),
        ({"stop": ["END", "STOP"]}, "stop"),
        ({"functions": [TOOL["function"]]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ],
)
def test_unsupported_parameters(unit_client, unit_runtime, master_auth, extra, param):
    body = {"model": "yandexgpt-lite", "messages": ASK, **extra}
    error = assert_error(
        unit_client.post(CHAT, json=body, headers=master_auth), 400, "unsupported_parameter"
    )
    assert error["param"] == param
    assert "yandexgpt-lite" in error["message"]
    assert job_count(unit_runtime) == 0


def test_neutral_values_of_unsupported_parameters_pass_validation(unit_client, master_auth):
    body = {"model": "yandexgpt-32k", "messages": ASK, "logprobs": False, "stop": None}
    body |= {"frequency_penalty": 0, "tools": [TOOL]}
    # Past the neutral values, the request fails only on what yandexgpt-32k lacks: tools.
    error = assert_error(
        unit_client.post(CHAT, json=body, headers=master_auth), 400, "unsupported_parameter"
    )
    assert error["param"] == "tools"


@pytest.mark.parametrize(
    "messages",
    [
        [*ASK, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
        [*ASK, {"role": "tool", "content": "sunny"}],
        [*ASK, {"role": "assistant", "content": None}],
        [
            *ASK,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                ],
            },
        ],
    ],
)
def test_inconsistent_tool_messages(unit_client, unit_runtime, master_auth, messages):
    body = {"model": "yandexgpt-lite", "messages": messages, "tools": [TOOL]}
    error = assert_error(
        unit_client.post(CHAT, json=body, headers=master_auth), 400, "invalid_request"
    )
    assert error["problems"]
    assert job_count(unit_runtime) == 0


def test_tool_choice_must_name_an_offered_tool(unit_client, master_auth):
    choice = {"type": "function", "function": {"name": "other"}}
    body = {"model": "yandexgpt-lite", "messages": ASK, "tools": [TOOL], "tool_choice": choice}
    error = assert_error(
        unit_client.post(CHAT, json=body, headers=master_auth), 400, "invalid_request"
    )
    assert "other" in error["message"]


def test_job_api_refuses_unsupported_the_same_way(unit_client, unit_runtime, master_auth):
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    body = {"model": "GigaChat", "messages": ASK, "response_format": schema}
    error = assert_error(
        unit_client.post("/v1/jobs", json=body, headers=master_auth), 400, "unsupported_parameter"
    )
    assert error["param"] == "response_format" and "GigaChat" in error["message"]
    assert job_count(unit_runtime) == 0
