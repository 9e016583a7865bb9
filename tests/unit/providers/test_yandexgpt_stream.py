"""YandexGPT streaming: NDJSON lines with the cumulative text become deltas; a cut is an error."""

from __future__ import annotations

import io
import json

import pytest

from providers.base import CompletionRequest, Message, StreamChunk, Usage
from providers.errors import (
    ContentFiltered,
    MalformedResponse,
    RateLimited,
    StreamInterrupted,
)
from providers.yandexgpt import YandexGPTProvider
from tests.unit.providers.conftest import YANDEX, yandex_config

COMPLETION = f"{YANDEX}/foundationModels/v1/completion"
REQUEST = CompletionRequest("yandexgpt-lite/latest", (Message("user", "Привет"),), stream=True)


def line(text: str, status: str = "PARTIAL", completion: int = 1) -> str:
    result = {
        "alternatives": [
            {
                "message": {"role": "assistant", "text": text},
                "status": f"ALTERNATIVE_STATUS_{status}",
            }
        ],
        "usage": {"inputTextTokens": "5", "completionTokens": str(completion), "totalTokens": "9"},
        "modelVersion": "23.10.2024",
    }
    return json.dumps({"result": result}, ensure_ascii=False) + "\n"


class BrokenBody(io.RawIOBase):
    """A body that delivers `data` and then fails the way a dropped connection does."""

    def __init__(self, data: bytes, error: Exception) -> None:
        self._data, self._error = data, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._data:
            raise self._error
        size = min(len(buffer), len(self._data))
        buffer[:size], self._data = self._data[:size], self._data[size:]
        return size


@pytest.fixture()
def provider():
    return YandexGPTProvider(yandex_config(api_key="yc-key"))


def test_cumulative_lines_become_deltas_and_a_final_chunk(rsps, provider):
    body = line("Здрав") + line("Здравствуйте") + line("Здравствуйте!", "FINAL", 4)
    rsps.post(COMPLETION, body=body, content_type="application/json")
    chunks = list(provider.stream(REQUEST))
    assert chunks == [
        StreamChunk("Здрав"),
        StreamChunk("ствуйте"),
        StreamChunk("!", "stop", Usage(5, 4, 9), "23.10.2024"),
    ]
    sent = json.loads(rsps.calls[0].request.body)
    assert sent["completionOptions"]["stream"] is True


def test_truncated_final_is_length(rsps, provider):
    rsps.post(COMPLETION, body=line("Раз") + line("Раз, два", "TRUNCATED_FINAL"))
    *_, last = provider.stream(REQUEST)
    assert (last.delta, last.finish_reason) == (", два", "length")


def test_a_body_that_ends_without_a_final_status_is_interrupted(rsps, provider):
    rsps.post(COMPLETION, body=line("Раз") + line("Раз, два"))
    chunks = provider.stream(REQUEST)
    assert next(chunks) == StreamChunk("Раз")
    assert next(chunks) == StreamChunk(", два")
    with pytest.raises(StreamInterrupted):
        next(chunks)


def test_a_connection_dropped_mid_body_is_interrupted(rsps, provider):
    broken = BrokenBody(line("Раз").encode(), ConnectionResetError("peer reset"))
    rsps.post(COMPLETION, body=io.BufferedReader(broken))
    chunks = provider.stream(REQUEST)
    with pytest.raises(StreamInterrupted) as error:
        list(chunks)
    assert error.value.retryable and error.value.reason == "stream_interrupted"


def test_a_read_timeout_mid_body_is_interrupted(rsps, provider):
    broken = BrokenBody(line("Раз").encode(), TimeoutError("timed out"))
    rsps.post(COMPLETION, body=io.BufferedReader(broken))
    with pytest.raises(StreamInterrupted):
        list(provider.stream(REQUEST))


def test_an_error_line_mid_stream_is_interrupted(rsps, provider):
    error = {"error": {"grpcCode": 13, "httpCode": 500, "message": "Internal error"}}
    rsps.post(COMPLETION, body=line("Раз") + json.dumps(error) + "\n")
    with pytest.raises(StreamInterrupted, match="Internal error"):
        list(provider.stream(REQUEST))


def test_content_filter_as_the_final_status_raises(rsps, provider):
    rsps.post(COMPLETION, body=line("Я не") + line("Я не могу", "CONTENT_FILTER"))
    with pytest.raises(ContentFiltered):
        list(provider.stream(REQUEST))


def test_a_chunk_that_rewrites_the_text_is_malformed(rsps, provider):
    rsps.post(COMPLETION, body=line("Раз") + line("Два", "FINAL"))
    with pytest.raises(MalformedResponse):
        list(provider.stream(REQUEST))


def test_an_http_error_before_the_stream_is_classified_as_usual(rsps, provider):
    envelope = {"error": {"grpcCode": 8, "httpCode": 429, "message": "quota", "details": []}}
    rsps.post(COMPLETION, json=envelope, status=429)
    with pytest.raises(RateLimited):
        list(provider.stream(REQUEST))
