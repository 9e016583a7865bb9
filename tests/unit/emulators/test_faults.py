"""Fault injection through /_emulator/faults, on both emulators, over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.unit.emulators.helpers import (
    API_KEY_HEADERS,
    TIMEOUT,
    add_fault,
    bearer,
    giga_body,
    oauth,
    stats,
    yandex_body,
)

COMPLETION = "/foundationModels/v1/completion"
GIGA_CHAT = "/api/v1/chat/completions"


def complete(url: str, timeout: float = TIMEOUT, **options) -> requests.Response:
    body = yandex_body(**options)
    return requests.post(url + COMPLETION, json=body, headers=API_KEY_HEADERS, timeout=timeout)


def giga_chat(url: str, token: str, timeout: float = TIMEOUT, **extra) -> requests.Response:
    body = giga_body(**extra)
    return requests.post(url + GIGA_CHAT, json=body, headers=bearer(token), timeout=timeout)


@pytest.mark.parametrize(
    ("kind", "status", "grpc"),
    [("http_429", 429, 8), ("http_500", 500, 13), ("http_503", 503, 14), ("http_504", 504, 4)],
)
def test_yandex_http_faults_use_the_envelope(yandex, kind, status, grpc):
    add_fault(yandex, kind=kind, model="yandexgpt-lite")
    response = complete(yandex)
    assert response.status_code == status
    assert response.json()["error"]["grpcCode"] == grpc
    assert "Retry-After" not in response.headers


def test_retry_after_fault_sends_the_header(yandex):
    add_fault(yandex, kind="http_429_retry_after", retry_after=2)
    response = complete(yandex)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")


def test_count_limits_a_rule_and_it_then_disappears(yandex):
    add_fault(yandex, kind="http_503", count=2)
    assert [complete(yandex).status_code for _ in range(3)] == [503, 503, 200]
    assert requests.get(f"{yandex}/_emulator/faults", timeout=TIMEOUT).json()["faults"] == []


def test_rules_match_model_and_branch_only(yandex):
    add_fault(yandex, kind="http_500", model="yandexgpt-lite", branch="rc")
    assert complete(yandex, branch="rc").status_code == 500
    assert complete(yandex, branch="latest").status_code == 200
    assert complete(yandex, model="yandexgpt", branch="rc").status_code == 200


def test_delete_clears_rules(yandex):
    add_fault(yandex, kind="http_500")
    assert requests.delete(f"{yandex}/_emulator/faults", timeout=TIMEOUT).status_code == 200
    assert complete(yandex).status_code == 200


def test_bad_rules_are_refused(yandex):
    for rule in (
        {"kind": "explode"},
        {"kind": "http_500", "count": 0},
        {"model": "x"},
        {"kind": "truncate", "path": "/iam/v1/tokens"},
    ):
        response = requests.post(f"{yandex}/_emulator/faults", json=rule, timeout=TIMEOUT)
        assert response.status_code == 400, rule


def test_malformed_json_fault(yandex):
    add_fault(yandex, kind="malformed_json")
    response = complete(yandex)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_reset_fault_drops_the_connection(yandex):
    add_fault(yandex, kind="reset")
    with pytest.raises(requests.ConnectionError):
        complete(yandex)


def test_timeout_fault_hangs_and_frees_the_slot_when_the_client_leaves(yandex):
    add_fault(yandex, kind="timeout", seconds=30, count=1)
    with pytest.raises(requests.ReadTimeout):
        complete(yandex, timeout=0.5)
    deadline = time.monotonic() + 5
    while stats(yandex)["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(yandex)["in_flight"] == 0
    assert complete(yandex).status_code == 200


def test_semantic_faults_shape_the_answer(yandex):
    add_fault(yandex, kind="content_filter", count=1)
    add_fault(yandex, kind="truncate", count=1)
    add_fault(yandex, kind="context_length", count=1)
    statuses = [complete(yandex).json()["result"]["alternatives"][0]["status"] for _ in range(2)]
    assert statuses == ["ALTERNATIVE_STATUS_CONTENT_FILTER", "ALTERNATIVE_STATUS_TRUNCATED_FINAL"]
    overflow = complete(yandex)
    assert overflow.status_code == 400
    assert (
        "Number of input tokens must be no more than 32000" in overflow.json()["error"]["message"]
    )


def test_stream_cut_fault_never_sends_final(yandex):
    add_fault(yandex, kind="stream_cut")
    response = requests.post(
        yandex + COMPLETION,
        json=yandex_body(stream=True),
        headers=API_KEY_HEADERS,
        stream=True,
        timeout=TIMEOUT,
    )
    lines = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        lines.extend(line for line in response.iter_lines() if line)
    statuses = {json.loads(line)["result"]["alternatives"][0]["status"] for line in lines}
    assert statuses <= {"ALTERNATIVE_STATUS_PARTIAL"}


def test_operation_error_fault_ends_the_operation_with_an_error(yandex_config, yandex):
    add_fault(yandex, kind="operation_error")
    operation = requests.post(
        yandex + "/foundationModels/v1/completionAsync",
        json=yandex_body(),
        headers=API_KEY_HEADERS,
        timeout=TIMEOUT,
    ).json()
    time.sleep(yandex_config.operation_delay + 0.1)
    done = requests.get(
        f"{yandex}/operations/{operation['id']}", headers=API_KEY_HEADERS, timeout=TIMEOUT
    ).json()
    assert done["done"] is True and done["error"]["code"] == 13 and "response" not in done


def test_path_rule_hits_any_endpoint_before_auth(giga):
    add_fault(giga, kind="http_503", path="/api/v2/oauth", count=1)
    failed = oauth(giga)
    assert (failed.status_code, failed.json()) == (
        503,
        {"status": 503, "message": "Service Unavailable"},
    )
    assert oauth(giga).status_code == 200


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("http_429", 429, "Too many requests"),
        ("http_500", 500, "Internal Server Error"),
        ("http_402", 402, "Payment Required"),
    ],
)
def test_gigachat_http_faults(giga, giga_token, kind, status, message):
    add_fault(giga, kind=kind, model="GigaChat")
    response = giga_chat(giga, giga_token)
    assert (response.status_code, response.json()) == (
        status,
        {"status": status, "message": message},
    )


def test_gigachat_preview_rules_use_the_rc_branch(giga, giga_token):
    add_fault(giga, kind="http_503", model="GigaChat-Pro", branch="rc")
    assert giga_chat(giga, giga_token, model="GigaChat-Pro-preview").status_code == 503
    assert giga_chat(giga, giga_token, model="GigaChat-Pro").status_code == 200


def test_gigachat_semantic_faults(giga, giga_token):
    for kind, finish in (
        ("content_filter", "blacklist"),
        ("truncate", "length"),
        ("finish_error", "error"),
    ):
        add_fault(giga, kind=kind, count=1)
        assert giga_chat(giga, giga_token).json()["choices"][0]["finish_reason"] == finish
    add_fault(giga, kind="context_length", count=1)
    assert giga_chat(giga, giga_token).status_code == 422


def test_gigachat_stream_cut_has_no_done(giga, giga_token):
    add_fault(giga, kind="stream_cut")
    body = giga_body(stream=True)
    response = requests.post(
        giga + GIGA_CHAT, json=body, headers=bearer(giga_token), stream=True, timeout=TIMEOUT
    )
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        received.extend(response.iter_content(chunk_size=None))
    assert b"data: " in b"".join(received)
    assert b"[DONE]" not in b"".join(received)


def test_credential_rules_hit_only_that_credential(giga, giga_token, yandex):
    add_fault(giga, kind="http_500", credential="client:someone-else")
    assert giga_chat(giga, giga_token).status_code == 200
    add_fault(giga, kind="http_503", credential="client:emu-client")
    assert giga_chat(giga, giga_token).status_code == 503
    add_fault(yandex, kind="http_503", credential="api-key:emu-yandex-key")
    assert complete(yandex).status_code == 503


def test_yandex_stream_error_ends_with_an_error_line(yandex):
    add_fault(yandex, kind="stream_error")
    response = complete(yandex, stream=True)
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines[0]["result"]["alternatives"][0]["status"] == "ALTERNATIVE_STATUS_PARTIAL"
    assert lines[-1]["error"]["httpCode"] == 500
    assert len(lines) == 2
    assert complete(yandex).status_code == 200  # a non-streaming call is left alone


def test_gigachat_stream_error_event_and_no_done(giga, giga_token):
    add_fault(giga, kind="stream_error")
    events = giga_chat(giga, giga_token, stream=True).text.split("\n\n")
    payloads = [json.loads(e.removeprefix("data: ")) for e in events if e]
    assert "choices" in payloads[0]
    assert payloads[-1] == {"status": 500, "message": "Internal Server Error"}
