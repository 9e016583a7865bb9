"""GigaChat emulator: OAuth, the chat wire shape (JSON and SSE), validation, finish reasons."""

from __future__ import annotations

import json
import time

import requests

from providers.emulators.common import CONTENT_FILTER_TRIGGER, FINISH_ERROR_TRIGGER
from tests.unit.emulators.helpers import TIMEOUT, bearer, giga_body, oauth

CHAT = "/api/v1/chat/completions"


def chat(url: str, token: str, body: dict) -> requests.Response:
    return requests.post(url + CHAT, json=body, headers=bearer(token), timeout=TIMEOUT)


def test_oauth_issues_a_token_with_expiry_in_milliseconds(giga):
    response = oauth(giga)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_at"}
    expected_ms = (time.time() + 1800) * 1000
    assert abs(body["expires_at"] - expected_ms) < 10_000


def test_oauth_rejects_bad_rquid_empty_scope_and_bad_key(giga):
    bad_rquid = oauth(giga, RqUID="not-a-uuid")
    assert bad_rquid.status_code == 400
    empty = oauth(giga, scope="")
    assert (empty.status_code, empty.json()) == (400, {"code": 5, "message": "scope is empty"})
    assert oauth(giga, key="ZHVkZTpwYXNz").status_code == 401  # base64("dude:pass")
    assert oauth(giga, key="%%%").status_code == 401


def test_chat_has_the_wire_shape(giga, giga_token):
    response = chat(giga, giga_token, giga_body("Расскажи про кошек"))
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] and response.headers["X-Session-Id"]
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "GigaChat:1.0.26.20"
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert (choice["index"], choice["finish_reason"]) == (0, "stop")
    assert choice["message"]["role"] == "assistant"
    assert "Расскажи про кошек" in choice["message"]["content"]
    usage = body["usage"]
    assert all(isinstance(v, int) for v in usage.values())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_session_id_is_echoed(giga, giga_token):
    headers = {**bearer(giga_token), "X-Session-ID": "my-session"}
    response = requests.post(giga + CHAT, json=giga_body(), headers=headers, timeout=TIMEOUT)
    assert response.headers["X-Session-Id"] == "my-session"


def test_preview_model_is_the_rc_version(giga, giga_token):
    body = chat(giga, giga_token, giga_body(model="GigaChat-Pro-preview")).json()
    assert body["model"] == "GigaChat-Pro-preview:2.2.26.1"


def test_unknown_or_missing_bearer_is_401(giga):
    for headers in ({}, bearer("nope")):
        response = requests.post(giga + CHAT, json=giga_body(), headers=headers, timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (
            401,
            {"status": 401, "message": "Unauthorized"},
        )


def test_validation_errors(giga, giga_token):
    late_system = giga_body()
    late_system["messages"].append({"role": "system", "content": "be brief"})
    response = chat(giga, giga_token, late_system)
    assert response.status_code == 422
    assert response.json()["message"] == "Invalid params: system message must be the first message"
    assert chat(giga, giga_token, giga_body(temperature=0)).status_code == 422
    assert chat(giga, giga_token, giga_body(repetition_penalty=-1)).status_code == 422
    assert chat(giga, giga_token, giga_body(top_p=1.5)).status_code == 422
    assert chat(giga, giga_token, giga_body(top_p=0.9, temperature=0.001)).status_code == 200
    unknown = chat(giga, giga_token, giga_body(model="GigaChat-9000"))
    assert (unknown.status_code, unknown.json()["message"]) == (404, "No such model")


def test_context_overflow_is_422(giga, giga_token):
    response = chat(giga, giga_token, giga_body("word " * 40_000))
    assert response.status_code == 422
    assert response.json()["status"] == 422


def test_finish_reasons(giga, giga_token):
    def finish(body: dict) -> str:
        return chat(giga, giga_token, body).json()["choices"][0]["finish_reason"]

    assert finish(giga_body(max_tokens=2)) == "length"
    assert finish(giga_body(f"about {CONTENT_FILTER_TRIGGER}")) == "blacklist"
    assert finish(giga_body(f"please {FINISH_ERROR_TRIGGER}")) == "error"


def test_stream_is_sse_with_usage_last_and_done(giga, giga_token):
    response = chat(giga, giga_token, giga_body("stream me please", stream=True))
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [e for e in response.content.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion" for c in chunks)
    assert [("usage" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    plain = chat(giga, giga_token, giga_body("stream me please")).json()
    assert text == plain["choices"][0]["message"]["content"]
