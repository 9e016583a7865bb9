"""Routing against real processes: a promote seen by a running API (gunicorn, 2 workers)
within one second; a circuit opened by real emulator faults moves the plan to latest, and
recovers through the half-open probe."""

from __future__ import annotations

import time

import pytest
import requests

from providers.base import CompletionRequest, Message
from providers.errors import ProviderError
from routing import ops
from routing.breaker import CircuitBreaker

pytestmark = pytest.mark.integration


def upstream(api_url: str, auth: dict[str, str], model_id: str) -> str:
    response = requests.get(f"{api_url}/v1/models/{model_id}/resolve", headers=auth, timeout=5)
    response.raise_for_status()
    return response.json()["route"]["upstream_id"]


def test_promote_is_seen_by_a_running_api_within_one_second(api_url, runtime, auth):
    for _ in range(20):  # warm both gunicorn workers' caches
        assert upstream(api_url, auth, "GigaChat-Max") == "GigaChat-Max"
    ops.apply_op(runtime.sessions, runtime.redis, ops.promote, "GigaChat-Max", actor="it")
    started = time.monotonic()
    try:
        seen = [upstream(api_url, auth, "GigaChat-Max") for _ in range(20)]
        elapsed = time.monotonic() - started
        assert set(seen) == {"GigaChat-Max-preview"}, seen
        assert elapsed < 1.0
    finally:
        ops.apply_op(runtime.sessions, runtime.redis, ops.rollback, "GigaChat-Max", actor="it")
    assert upstream(api_url, auth, "GigaChat-Max") == "GigaChat-Max"


def fault(emulator_url: str, **rule) -> None:
    requests.post(f"{emulator_url}/_emulator/faults", json=rule, timeout=5).raise_for_status()


def call(runtime, upstream_model: str) -> None:
    request = CompletionRequest(
        upstream_model=upstream_model, messages=(Message("user", "Привет"),)
    )
    runtime.provider("yandexgpt").complete(request)


def plan(client, auth, model_id: str) -> dict:
    return client.get(f"/v1/models/{model_id}/resolve", headers=auth).get_json()


def test_emulator_faults_open_the_circuit_and_the_plan_moves_to_latest(
    runtime, emulators, client, auth
):
    breaker = CircuitBreaker(runtime.redis, min_calls=3, failure_rate=0.5, cooldown_seconds=1.0)
    key = "yandexgpt:yandexgpt-lite:rc"
    fault(emulators["yandexgpt"], kind="http_503", model="yandexgpt-lite", branch="rc")
    try:
        for _ in range(3):
            assert breaker.allow(key)
            with pytest.raises(ProviderError):
                call(runtime, "yandexgpt-lite/rc")
            breaker.record_failure(key)
        opened = plan(client, auth, "yandexgpt-lite:rc")
        assert [(s["route"]["channel"], s["reason"]) for s in opened["skipped"]] == [
            ("rc", "circuit_open")
        ]
        assert opened["candidates"][0]["route"]["upstream_id"] == "yandexgpt-lite/latest"
        call(runtime, opened["candidates"][0]["route"]["upstream_id"])  # latest still answers
        assert not breaker.allow(key)
    finally:
        requests.delete(f"{emulators['yandexgpt']}/_emulator/faults", timeout=5)
    time.sleep(1.05)
    assert breaker.allow(key)  # the half-open probe
    assert plan(client, auth, "yandexgpt-lite:rc")["skipped"][0]["reason"] == "circuit_open"
    call(runtime, "yandexgpt-lite/rc")
    assert breaker.record_success(key) == "closed"
    recovered = plan(client, auth, "yandexgpt-lite:rc")
    assert recovered["skipped"] == [] and recovered["candidates"][0]["route"]["channel"] == "rc"
