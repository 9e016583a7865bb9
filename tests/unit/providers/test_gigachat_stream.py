"""GigaChat streaming: SSE `data:` deltas and `[DONE]`; a stream without `[DONE]` is an error."""

from __future__ import annotations

import io
import json
import time

import pytest

from providers.base import CompletionRequest, Message, StreamChunk, Usage
from providers.errors import (
    ContentFiltered,
    MalformedResponse,
    StreamInterrupted,
    UpstreamServerError,
)
from providers.gigachat import GigaChatProvider
from tests.unit.providers.conftest import GIGA, GIGA_AUTH, giga_config
from tests.unit.providers.test_yandexgpt_stream import BrokenBody

CHAT = f"{GIGA}/chat/completions"
REQUEST = CompletionRequest("GigaChat-Pro", (Message("user", "Раз"),), stream=True)
SSE = "text/event-stream; charset=utf-8"
USAGE = {"prompt_tokens": 17, "completion_tokens": 42, "total_tokens": 59}


def event(content: str, finish: str | None = None, role: bool = False) -> str:
    delta = {"content": content} | ({"role": "assistant"} if role else {})
    choice = {"delta": delta, "index": 0} | ({"finish_reason": finish} if finish else {})
    data = {"choices": [choice], "created": 1, "model": "GigaChat-Pro:2.0.28.2"}
    if finish:
        data["usage"] = USAGE
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
WHOLE = event("Раз", role=True) + event(", два") + event("", "stop") + DONE


@pytest.fixture()
def provider(rsps):
    expires = int((time.time() + 1800) * 1000)
    rsps.post(GIGA_AUTH, json={"access_token": "tok-1", "expires_at": expires})
    return GigaChatProvider(giga_config())


def test_deltas_then_the_final_chunk_after_done(rsps, provider):
    rsps.post(CHAT, body=WHOLE, content_type=SSE)
    assert list(provider.stream(REQUEST)) == [
        StreamChunk("Раз"),
        StreamChunk(", два"),
        StreamChunk("", "stop", Usage(17, 42, 59), "2.0.28.2"),
    ]
    call = rsps.calls[-1]
    assert json.loads(call.request.body)["stream"] is True
    assert call.request.headers["Accept"] == "text/event-stream"


def test_a_stream_without_done_is_interrupted(rsps, provider):
    rsps.post(CHAT, body=event("Раз", role=True) + event(", два"), content_type=SSE)
    chunks = provider.stream(REQUEST)
    assert next(chunks).delta == "Раз"
    assert next(chunks).delta == ", два"
    with pytest.raises(StreamInterrupted):
        next(chunks)


def test_a_final_event_without_done_is_still_interrupted(rsps, provider):
    rsps.post(CHAT, body=event("Раз", role=True) + event("", "stop"), content_type=SSE)
    with pytest.raises(StreamInterrupted):
        list(provider.stream(REQUEST))


def test_done_without_a_final_event_is_interrupted(rsps, provider):
    rsps.post(CHAT, body=event("Раз", role=True) + DONE, content_type=SSE)
    with pytest.raises(StreamInterrupted):
        list(provider.stream(REQUEST))


def test_a_connection_dropped_mid_body_is_interrupted(rsps, provider):
    broken = BrokenBody(event("Раз", role=True).encode(), ConnectionResetError("reset"))
    rsps.post(CHAT, body=io.BufferedReader(broken), content_type=SSE)
    with pytest.raises(StreamInterrupted):
        list(provider.stream(REQUEST))


def test_an_error_event_mid_stream_is_interrupted(rsps, provider):
    error = 'data: {"status": 500, "message": "Internal Server Error"}\n\n'
    rsps.post(CHAT, body=event("Раз", role=True) + error, content_type=SSE)
    with pytest.raises(StreamInterrupted, match="Internal Server Error"):
        list(provider.stream(REQUEST))


def test_blacklist_and_error_finishes_are_classified(rsps, provider):
    rsps.post(CHAT, body=event("Нет", role=True) + event("", "blacklist") + DONE, content_type=SSE)
    with pytest.raises(ContentFiltered):
        list(provider.stream(REQUEST))
    rsps.replace("POST", CHAT, body=event("", "error") + DONE, content_type=SSE)
    with pytest.raises(UpstreamServerError):
        list(provider.stream(REQUEST))


def test_a_200_that_is_not_an_event_stream_is_malformed(rsps, provider):
    rsps.post(CHAT, json={"choices": []})
    with pytest.raises(MalformedResponse):
        list(provider.stream(REQUEST))
