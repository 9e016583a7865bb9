"""The run-time control endpoint: served versions, latency, stats, and the concurrency gauge."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from providers.emulators import gigachat, yandexgpt
from tests.unit.emulators.helpers import (
    API_KEY_HEADERS,
    TIMEOUT,
    bearer,
    giga_body,
    oauth,
    running,
    stats,
    yandex_body,
)

COMPLETION = "/foundationModels/v1/completion"


def complete(url: str, headers: dict = API_KEY_HEADERS, **options) -> requests.Response:
    return requests.post(
        url + COMPLETION, json=yandex_body(**options), headers=headers, timeout=TIMEOUT
    )


def version_of(url: str, branch: str) -> str:
    return complete(url, model="yandexgpt", branch=branch).json()["result"]["modelVersion"]


def control(url: str, what: str, body: dict) -> requests.Response:
    return requests.post(f"{url}/_emulator/{what}", json=body, timeout=TIMEOUT)


def test_version_can_be_set_per_branch(yandex):
    response = control(
        yandex, "versions", {"model": "yandexgpt", "branch": "rc", "version": "01.01.2026"}
    )
    assert response.json()["versions"]["yandexgpt"]["rc"] == "01.01.2026"
    assert version_of(yandex, "rc") == "01.01.2026"
    assert version_of(yandex, "latest") == "09.02.2025"


def test_promote_moves_rc_to_latest_and_latest_to_deprecated(yandex):
    assert control(yandex, "versions", {"model": "yandexgpt", "promote": True}).status_code == 200
    assert [version_of(yandex, b) for b in ("deprecated", "latest", "rc")] == [
        "09.02.2025",
        "21.08.2025",
        "21.08.2025",
    ]


def test_bad_version_changes_are_refused(yandex):
    for body in (
        {"model": "nope", "version": "1"},
        {"model": "yandexgpt", "branch": "x", "version": "1"},
        {"model": "yandexgpt"},
    ):
        assert control(yandex, "versions", body).status_code == 400


def test_gigachat_version_switch_changes_the_model_field(giga):
    control(giga, "versions", {"model": "GigaChat-2", "version": "2.1.0.0"})
    token = oauth(giga).json()["access_token"]
    body = requests.post(
        f"{giga}/api/v1/chat/completions",
        json=giga_body(model="GigaChat-2"),
        headers=bearer(token),
        timeout=TIMEOUT,
    ).json()
    assert body["model"] == "GigaChat-2:2.1.0.0"


def test_latency_is_switchable_at_run_time(yandex):
    assert control(yandex, "latency", {"latency": 0.3}).json()["latency"] == 0.3
    started = time.monotonic()
    assert complete(yandex).status_code == 200
    assert time.monotonic() - started >= 0.3
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(complete, yandex)
        deadline = time.monotonic() + 5
        while not stats(yandex)["in_flight_by_route"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stats(yandex)["in_flight_by_route"] == {"POST /foundationModels/v1/completion": 1}
        assert call.result().status_code == 200
    assert stats(yandex)["in_flight_by_route"] == {}
    control(yandex, "latency", {"latency": 0})
    started = time.monotonic()
    complete(yandex)
    assert time.monotonic() - started < 0.3
    assert control(yandex, "latency", {"latency": -1}).status_code == 400


def test_stats_count_requests_models_and_tokens(yandex, giga):
    complete(yandex)
    complete(yandex, model="yandexgpt", branch="rc")
    counted = stats(yandex)
    assert counted["requests"]["POST /foundationModels/v1/completion"] == 2
    assert counted["models"] == {"yandexgpt-lite/latest": 1, "yandexgpt/rc": 1}
    assert counted["in_flight"] == 0
    oauth(giga)
    oauth(giga)
    assert stats(giga)["tokens_issued"] == 2


def test_concurrency_past_the_limit_is_429_per_credential():
    config = yandexgpt.YandexEmulatorConfig(api_keys={"a", "b"}, latency=0.6, max_concurrency=2)
    with running(yandexgpt.create_app(config)) as url, ThreadPoolExecutor(5) as pool:
        key_a, key_b = ({"Authorization": f"Api-Key {k}"} for k in "ab")
        futures = [pool.submit(complete, url, key_a) for _ in range(4)]
        time.sleep(0.2)
        other = pool.submit(complete, url, key_b)
        statuses = sorted(f.result().status_code for f in futures)
        assert other.result().status_code == 200
        rejected = [f.result() for f in futures if f.result().status_code == 429]
        assert rejected[0].json()["error"]["grpcCode"] == 8
        assert "allowed 2 requests" in rejected[0].json()["error"]["message"]
        assert stats(url)["rejected_concurrency"] == 2
        assert complete(url, key_a).status_code == 200
    assert statuses == [200, 200, 429, 429]


def test_gigachat_concurrency_limit():
    config = gigachat.GigaChatEmulatorConfig(latency=0.5, max_concurrency=1)
    with running(gigachat.create_app(config)) as url, ThreadPoolExecutor(3) as pool:
        token = oauth(url).json()["access_token"]
        chat = f"{url}/api/v1/chat/completions"
        futures = [
            pool.submit(
                requests.post, chat, json=giga_body(), headers=bearer(token), timeout=TIMEOUT
            )
            for _ in range(3)
        ]
        responses = [f.result() for f in futures]
    assert sorted(r.status_code for r in responses) == [200, 429, 429]
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json() == {"status": 429, "message": "Too many requests"}


def test_stream_chunk_delay_stretches_the_stream_not_the_first_byte(yandex):
    control(yandex, "latency", {"stream_chunk_delay": 0.05})
    started = time.monotonic()
    response = requests.post(
        yandex + COMPLETION,
        json=yandex_body(stream=True),
        headers=API_KEY_HEADERS,
        stream=True,
        timeout=TIMEOUT,
    )
    lines = response.iter_lines()
    next(lines)
    first_byte = time.monotonic() - started
    chunks = 1 + sum(1 for line in lines if line)
    total = time.monotonic() - started
    assert first_byte < 0.2
    assert total >= 0.05 * (chunks - 1)
    assert requests.get(f"{yandex}/_emulator/latency", timeout=TIMEOUT).json() == {
        "latency": 0.0,
        "latency_jitter": 0.0,
        "stream_chunk_delay": 0.05,
    }


def test_concurrency_retry_after_is_configurable():
    config = gigachat.GigaChatEmulatorConfig(
        latency=0.5, max_concurrency=1, concurrency_retry_after=3
    )
    with running(gigachat.create_app(config)) as url, ThreadPoolExecutor(2) as pool:
        token = oauth(url).json()["access_token"]
        chat = f"{url}/api/v1/chat/completions"
        futures = [
            pool.submit(
                requests.post, chat, json=giga_body(), headers=bearer(token), timeout=TIMEOUT
            )
            for _ in range(2)
        ]
        rejected = [f.result() for f in futures if f.result().status_code == 429]
    assert [r.headers.get("Retry-After") for r in rejected] == ["3"]


def test_stats_report_optional_client_headers_but_never_authorization(yandex):
    headers = {
        **API_KEY_HEADERS,
        "x-client-request-id": "abc-123",
        "x-data-logging-enabled": "false",
    }
    complete(yandex, headers)
    seen = stats(yandex)
    assert seen["last_headers"] == {
        "x-client-request-id": "abc-123",
        "x-data-logging-enabled": "false",
    }
    assert seen["headers_seen"] == {"x-client-request-id": 1, "x-data-logging-enabled": 1}


def test_unknown_paths_and_oversized_bodies_use_the_provider_envelope(yandex, giga, giga_token):
    missing = requests.get(f"{yandex}/foundationModels/v9/nothing", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["error"]["grpcCode"] == 5
    wrong_method = requests.get(f"{giga}/api/v2/oauth", timeout=TIMEOUT)
    assert wrong_method.json()["status"] == 405
    huge = requests.post(
        f"{giga}/api/v1/chat/completions",
        data=b"x" * (21 * 1024 * 1024),
        headers={**bearer(giga_token), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert (huge.status_code, huge.json()) == (413, {"status": 413, "message": "Payload too large"})


def test_a_retired_version_answers_like_an_unknown_model(yandex, giga, giga_token):
    control(yandex, "versions", {"model": "yandexgpt", "branch": "deprecated", "retired": True})
    retired = complete(yandex, model="yandexgpt", branch="deprecated")
    assert retired.status_code == 400 and retired.json()["error"]["grpcCode"] == 3
    assert complete(yandex, model="yandexgpt", branch="latest").status_code == 200
    control(yandex, "versions", {"model": "yandexgpt", "branch": "deprecated", "version": "1.1"})
    assert version_of(yandex, "deprecated") == "1.1"
    control(giga, "versions", {"model": "GigaChat-Max", "branch": "rc", "retired": True})
    chat = requests.post(
        f"{giga}/api/v1/chat/completions",
        json=giga_body(model="GigaChat-Max-preview"),
        headers=bearer(giga_token),
        timeout=TIMEOUT,
    )
    assert (chat.status_code, chat.json()["message"]) == (404, "No such model")
    listed = requests.get(f"{giga}/api/v1/models", headers=bearer(giga_token), timeout=TIMEOUT)
    ids = {m["id"] for m in listed.json()["data"]}
    assert "GigaChat-Max-preview" not in ids and "GigaChat-Max" in ids
