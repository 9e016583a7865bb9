"""A request's plan requirements (`jobs.features`) and the tool references in its messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.features import requirements
from jobs.spec import JobRequest
from routing.plan import Requirement

TOOLS = (Requirement("tools", "tools"),)
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def request(**fields) -> JobRequest:
    return JobRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]} | fields
    )


def test_requirements_from_the_request():
    assert requirements(request()) == ()
    assert requirements(request(), stream=True) == (Requirement("stream", "stream"),)
    assert [r.param for r in requirements(request(tools=[TOOL]))] == ["tools"]
    two = [TOOL, {"type": "function", "function": {"name": "g"}}]
    forced = requirements(request(tools=two, tool_choice="required"))
    assert Requirement("tool_choice", providers=("yandexgpt",)) in forced
    assert requirements(request(tools=[TOOL], tool_choice="required")) == TOOLS
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}
    assert requirements(request(response_format=fmt)) == (
        Requirement("response_format", "json_schema"),
    )
    assert requirements(request(response_format={"type": "text"})) == ()
    assert requirements(request(stop=["END"])) == (Requirement("stop", providers=()),)


def test_a_tool_history_needs_tools_even_without_tools_offered():
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    parsed = request(messages=messages)
    assert parsed.messages[2].name == "f"  # the tool message learns its function's name
    assert [r.param for r in requirements(parsed)] == ["tools"]


@pytest.mark.parametrize(
    ("messages", "fields"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], {}),
        ([{"role": "user", "content": "x", "tool_calls": [CALL]}], {}),
        ([{"role": "assistant", "content": ""}], {}),
        ([{"role": "user", "content": "x"}], {"tool_choice": "auto"}),
        (
            [{"role": "user", "content": "x"}],
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}},
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}],
                }
            ],
            {},
        ),
        ([{"role": "user", "content": "x"}], {"response_format": {"type": "json_schema"}}),
    ],
)
def test_inconsistent_tool_requests_are_refused(messages, fields):
    with pytest.raises(ValidationError):
        request(messages=messages, **fields)
