"""How tool calls leave the API: the answer's `message.tool_calls` and the stream's one
`delta.tool_calls` chunk before the finish (OpenAI's shapes, arguments as a JSON string)."""

from __future__ import annotations

import json

from api.chat import ChunkMaker, openai_tool_calls, sse_body

CALLS = [
    {"id": "call_a", "name": "get_weather", "arguments": {"city": "Москва", "days": 2}},
    {"id": "call_b", "name": "get_time", "arguments": {}},
]
DONE = {
    "status": "succeeded",
    "finish_reason": "tool_calls",
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    "provider": "yandexgpt",
    "model": "yandexgpt-lite",
    "channel": "latest",
    "model_version": "22.05.2025",
    "tool_calls": CALLS,
}


def test_openai_form_has_string_arguments():
    [first, second] = openai_tool_calls(CALLS)
    assert first == {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Москва", "days": 2}'},
    }
    assert json.loads(second["function"]["arguments"]) == {}
    assert [c["index"] for c in openai_tool_calls(CALLS, indexed=True)] == [0, 1]


def test_stream_sends_the_calls_then_the_finish():
    maker = ChunkMaker("job1", "yandexgpt-lite", 1, include_usage=True)
    events = list(sse_body(maker, iter([("done", DONE)])))
    assert events[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1]["tool_calls"] == openai_tool_calls(CALLS, indexed=True)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes == [None, None, "tool_calls"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8


def test_a_text_answer_sends_no_tool_chunk():
    maker = ChunkMaker("job1", "m", 1, include_usage=False)
    done = {**DONE, "finish_reason": "stop", "tool_calls": []}
    events = list(sse_body(maker, iter([("delta", {"content": "Привет"}), ("done", done)])))
    assert not any("tool_calls" in e for e in events)
