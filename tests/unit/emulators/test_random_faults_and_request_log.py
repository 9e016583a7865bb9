"""Random-rate faults (`probability`, deterministic with a seed) and the request log keyed by
the client's request id (`/_emulator/requests`), on both emulators over real HTTP."""

from __future__ import annotations

import random

import pytest
import requests

from providers.emulators import gigachat, yandexgpt
from providers.emulators.faults import FaultBook, FaultRule
from tests.unit.emulators.helpers import (
    API_KEY_HEADERS,
    TIMEOUT,
    add_fault,
    bearer,
    giga_body,
    running,
    yandex_body,
)

COMPLETION = "/foundationModels/v1/completion"
GIGA_CHAT = "/api/v1/chat/completions"


def yandex_call(url: str, request_id: str | None = None) -> int:
    headers = {**API_KEY_HEADERS, **({"x-client-request-id": request_id} if request_id else {})}
    return requests.post(
        url + COMPLETION, json=yandex_body(), headers=headers, timeout=TIMEOUT
    ).status_code


def logged(url: str, request_id: str | None = None) -> list[dict]:
    params = {"request_id": request_id} if request_id else {}
    body = requests.get(f"{url}/_emulator/requests", params=params, timeout=TIMEOUT).json()
    assert body["count"] == len(body["requests"])
    return body["requests"]


def test_a_seeded_rule_fires_on_the_same_requests_every_time(yandex):
    add_fault(yandex, kind="http_503", probability=0.3, seed=7)
    statuses = [yandex_call(yandex) for _ in range(40)]
    draws = random.Random(7)
    expected = [503 if draws.random() < 0.3 else 200 for _ in range(40)]
    assert statuses == expected
    assert 0 < statuses.count(503) < 40


def test_the_emulator_seed_makes_unseeded_rules_deterministic():
    def run() -> list[int]:
        with running(yandexgpt.create_app(yandexgpt.YandexEmulatorConfig(fault_seed=3))) as url:
            add_fault(url, kind="http_500", probability=0.5)
            return [yandex_call(url) for _ in range(20)]

    first = run()
    assert first == run() and {200, 500} == set(first)


def test_count_counts_only_firings():
    book = FaultBook(seed=1)
    book.add(FaultRule.from_json({"kind": "http_500", "probability": 0.5, "count": 3}))
    fired = sum(book.take("m", "latest", None) is not None for _ in range(200))
    assert fired == 3 and book.as_json() == []


def test_a_rule_that_does_not_fire_lets_the_next_rule_match():
    book = FaultBook()
    book.add(FaultRule.from_json({"kind": "http_500", "probability": 0.000001, "seed": 1}))
    book.add(FaultRule.from_json({"kind": "http_429"}))
    assert book.take("m", "latest", None).kind == "http_429"


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "http_500", "probability": 0},
        {"kind": "http_500", "probability": 1.5},
        {"kind": "http_500", "probability": "half"},
        {"kind": "http_500", "probability": True},
        {"kind": "http_500", "seed": "x"},
        {"kind": "http_500", "_rng": None},
    ],
)
def test_bad_probability_or_seed_is_a_400(yandex, rule):
    response = requests.post(f"{yandex}/_emulator/faults", json=rule, timeout=TIMEOUT)
    assert response.status_code == 400, response.text


def test_listed_rules_show_probability_and_seed(yandex):
    add_fault(yandex, kind="http_500", probability=0.05, seed=9)
    (rule,) = requests.get(f"{yandex}/_emulator/faults", timeout=TIMEOUT).json()["faults"]
    assert rule["probability"] == 0.05 and rule["seed"] == 9 and "_rng" not in rule


def test_yandex_requests_are_logged_by_the_client_request_id(yandex):
    add_fault(yandex, kind="http_500", count=2)
    assert [yandex_call(yandex, "job-1") for _ in range(3)] == [500, 500, 200]
    assert yandex_call(yandex, "job-2") == 200
    assert yandex_call(yandex) == 200
    job_1 = logged(yandex, "job-1")
    assert [e["status"] for e in job_1] == [500, 500, 200]
    assert {e["path"] for e in job_1} == {COMPLETION} and {e["method"] for e in job_1} == {"POST"}
    assert len(logged(yandex, "job-2")) == 1
    assert [e["request_id"] for e in logged(yandex)] == ["job-1"] * 3 + ["job-2", None]


def test_gigachat_requests_are_logged_by_x_request_id(giga, giga_token):
    headers = {**bearer(giga_token), "X-Request-ID": "job-9"}
    for _ in range(2):
        response = requests.post(
            giga + GIGA_CHAT, json=giga_body(), headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == 200
    assert [(e["path"], e["status"]) for e in logged(giga, "job-9")] == [(GIGA_CHAT, 200)] * 2
    assert logged(giga, "nobody") == []


def test_control_calls_are_not_logged_and_delete_clears(yandex):
    yandex_call(yandex, "job-1")
    requests.get(f"{yandex}/_emulator/stats", timeout=TIMEOUT)
    assert [e["path"] for e in logged(yandex)] == [COMPLETION]
    requests.delete(f"{yandex}/_emulator/requests", timeout=TIMEOUT)
    assert logged(yandex) == []


def test_a_reset_connection_is_logged_with_status_0():
    with running(gigachat.create_app()) as url:
        add_fault(url, kind="reset", path="/api/v2/oauth")
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{url}/api/v2/oauth", headers={"X-Request-ID": "r"}, timeout=TIMEOUT)
        assert [e["status"] for e in logged(url, "r")] == [0]
