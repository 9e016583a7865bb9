"""`stream: true` end to end: the live API, a real worker, the emulators' streams and faults.

A stream the provider cuts must end as an error for the client (never as a clean finish),
and the job must say `failed` with `stream_interrupted`.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import requests
from werkzeug.serving import make_server

from llmgw.app import create_app
from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration
PROMPT = [{"role": "user", "content": "Расскажи коротко, как работает потоковая передача"}]


@pytest.fixture()
def faults(emulators, runtime):
    """Add a fault rule to an emulator. After the test every rule is cleared, and the circuits
    the faults counted against are closed, so that other tests see healthy routes."""
    faulted: list[str] = []

    def add(provider: str, **rule) -> None:
        response = requests.post(f"{emulators[provider]}/_emulator/faults", json=rule, timeout=5)
        assert response.status_code == 201, response.text
        faulted.append(f"{provider}:{rule['model']}")

    yield add
    for url in emulators.values():
        requests.delete(f"{url}/_emulator/faults", timeout=5)
    for route in faulted:
        for channel in ("latest", "rc", "deprecated"):
            runtime.breaker.reset(f"{route}:{channel}")


@pytest.fixture()
def sdk(live_api):
    from openai import OpenAI

    return OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)


def job_of(client, auth, job_id: str) -> dict:
    job = client.get(f"/v1/jobs/{job_id}?wait=30", headers=auth).get_json()
    assert job["status"] not in ("queued", "running"), job
    return job


def raw_events(live_api: str, model: str) -> tuple[requests.Response, list[str]]:
    """The `data:` payloads of a streamed answer, read over plain HTTP."""
    response = requests.post(
        f"{live_api}/v1/chat/completions",
        json={"model": model, "messages": PROMPT, "stream": True},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        stream=True,
        timeout=60,
    )
    lines = [line.decode() for line in response.iter_lines() if line]
    return response, [line.removeprefix("data: ") for line in lines]


@pytest.mark.parametrize("model", ["yandexgpt-lite:latest", "GigaChat-Pro:rc"])
def test_sdk_stream_joins_to_the_same_text_as_one_answer(worker, sdk, client, auth, model):
    whole = sdk.chat.completions.create(model=model, messages=PROMPT)
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens
    job_id = raw.headers["x-llmgw-job-id"]
    assert chunks[0].id == f"chatcmpl-{job_id}"
    job = job_of(client, auth, job_id)
    assert job["status"] == "succeeded" and job["result"]["content"] == text
    assert [a["outcome"] for a in job["attempts"]] == ["succeeded"]


def test_wire_format_role_first_finish_then_done(worker, live_api):
    response, events = raw_events(live_api, "GigaChat:latest")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["x-llmgw-provider"] == "gigachat"
    first, *middle, last, done = events
    assert done == "[DONE]"
    assert json.loads(first)["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in middle)
    assert json.loads(last)["choices"][0] == {
        "index": 0,
        "delta": {},
        "finish_reason": "stop",
        "logprobs": None,
    }


@pytest.mark.parametrize(
    ("provider", "model", "kind"),
    [
        ("yandexgpt", "yandexgpt-lite", "stream_cut"),
        ("gigachat", "GigaChat-Pro", "stream_cut"),
        ("yandexgpt", "yandexgpt-lite", "stream_error"),
        ("gigachat", "GigaChat-Pro", "stream_error"),
    ],
)
def test_a_stream_cut_after_the_first_chunk_ends_as_an_error(
    worker, sdk, client, auth, faults, provider, model, kind
):
    import openai

    faults(provider, kind=kind, model=model)
    raw = sdk.chat.completions.with_raw_response.create(model=model, messages=PROMPT, stream=True)
    received = []
    with pytest.raises(openai.APIError) as error:
        for chunk in raw.parse():
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received)  # the first chunk did arrive before the cut
    assert error.value.body["code"] == "stream_interrupted"
    job = job_of(client, auth, raw.headers["x-llmgw-job-id"])
    assert job["status"] == "failed" and job["error"]["code"] == "stream_interrupted"
    assert [(a["outcome"], a["error_reason"]) for a in job["attempts"]] == [
        ("failed", "stream_interrupted")
    ]


# The emulators cut a stream only after its first chunk, which the worker has published by
# then; a connection that fails before any chunk is what `http_503` and `reset` give.
@pytest.mark.parametrize(
    ("provider", "model", "kind", "reason"),
    [
        ("yandexgpt", "yandexgpt-lite", "http_503", "upstream_5xx"),
        ("gigachat", "GigaChat-Pro", "reset", "connection"),
    ],
)
def test_a_failure_before_the_first_chunk_is_retried(
    worker, sdk, client, auth, faults, provider, model, kind, reason
):
    faults(provider, kind=kind, model=model, count=1)
    raw = sdk.chat.completions.with_raw_response.create(model=model, messages=PROMPT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse())
    job = job_of(client, auth, raw.headers["x-llmgw-job-id"])
    assert job["status"] == "succeeded" and job["result"]["content"] == text
    assert [(a["outcome"], a["error_reason"]) for a in job["attempts"]] == [
        ("failed", reason),
        ("succeeded", None),
    ]


def test_an_answer_cut_by_max_tokens_finishes_with_length(worker, sdk, client, auth, faults):
    faults("yandexgpt", kind="truncate", model="yandexgpt-lite")
    raw = sdk.chat.completions.with_raw_response.create(
        model="yandexgpt-lite", messages=PROMPT, stream=True, max_tokens=5
    )
    chunks = list(raw.parse())
    assert chunks[-1].choices[0].finish_reason == "length"
    job = job_of(client, auth, raw.headers["x-llmgw-job-id"])
    assert job["status"] == "incomplete" and job["result"]["finish_reason"] == "length"


def test_a_job_that_fails_before_any_chunk_ends_the_stream_with_its_error(worker, live_api, faults):
    faults("gigachat", kind="http_402", model="GigaChat")
    response, events = raw_events(live_api, "GigaChat:latest")
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "payment_required"
    assert error["job_id"] == response.headers["x-llmgw-job-id"]


def test_a_replayed_request_streams_the_same_job_again(worker, sdk, client, auth, runtime):
    from storage import keys

    key = f"stream-replay-{uuid.uuid4().hex}"

    def streamed() -> tuple[str, str]:
        raw = sdk.chat.completions.with_raw_response.create(
            model="GigaChat:latest",
            messages=PROMPT,
            stream=True,
            extra_headers={"Idempotency-Key": key},
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse())
        return raw.headers["x-llmgw-job-id"], text

    first_id, first = streamed()
    assert streamed() == (first_id, first)  # replayed from the Redis stream
    runtime.redis.delete(keys.job_stream(first_id))
    assert streamed() == (first_id, first)  # the stream expired: the answer comes from the row
    assert len(job_of(client, auth, first_id)["attempts"]) == 1


def test_no_event_within_the_sync_timeout_ends_as_job_timeout(
    worker, runtime, client, auth, faults
):
    from llmgw.container import Container

    faults("yandexgpt", kind="timeout", model="yandexgpt-lite", seconds=3, count=1)
    impatient = Container(runtime.settings.model_copy(update={"sync_timeout_seconds": 1.0}))
    server = make_server("127.0.0.1", 0, create_app(container=impatient), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response, events = raw_events(f"http://127.0.0.1:{server.server_port}", "yandexgpt-lite")
    finally:
        server.shutdown()
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "job_timeout"
    # The client gave up, the job did not: it is retried and ends with its answer.
    assert job_of(client, auth, response.headers["x-llmgw-job-id"])["status"] == "succeeded"


def test_a_job_cancelled_before_it_ends_ends_the_stream_as_cancelled(
    worker, live_api, client, auth, emulators
):
    url = emulators["gigachat"]
    requests.post(f"{url}/_emulator/latency", json={"latency": 2}, timeout=5)
    try:
        response = requests.post(
            f"{live_api}/v1/chat/completions",
            json={"model": "GigaChat-Max", "messages": PROMPT, "stream": True},
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
            stream=True,
            timeout=60,
        )
        job_id = response.headers["x-llmgw-job-id"]
        assert client.delete(f"/v1/jobs/{job_id}", headers=auth).status_code == 200
        events = [line.decode() for line in response.iter_lines() if line]
    finally:
        requests.post(f"{url}/_emulator/latency", json={"latency": 0}, timeout=5)
    assert events[-1] != "data: [DONE]"
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert (error["code"], error["job_id"]) == ("cancelled", job_id)


def test_text_arrives_while_the_job_is_still_running(worker, sdk, client, auth, emulators):
    url = emulators["yandexgpt"]
    requests.post(f"{url}/_emulator/latency", json={"stream_chunk_delay": 0.3}, timeout=5)
    try:
        raw = sdk.chat.completions.with_raw_response.create(
            model="yandexgpt-lite", messages=PROMPT, stream=True
        )
        job_url = f"/v1/jobs/{raw.headers['x-llmgw-job-id']}"
        statuses = []
        for chunk in raw.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                statuses.append(client.get(job_url, headers=auth).get_json()["status"])
    finally:
        requests.post(f"{url}/_emulator/latency", json={"stream_chunk_delay": 0}, timeout=5)
    assert len(statuses) > 2 and statuses[0] == "running"
    assert job_of(client, auth, raw.headers["x-llmgw-job-id"])["status"] == "succeeded"
