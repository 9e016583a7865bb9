"""The limit script's semantics, run by fakeredis's Lua (lupa)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import fakeredis
import pytest

from storage.limits import Check, Limit, Limiter, Refused, Reservation, build_checks

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture()
def redis():
    return fakeredis.FakeRedis()


@pytest.fixture()
def limiter(redis):
    return Limiter(redis, slot_lease_seconds=60)


def checks(scope: str = "key:k", **limits: int) -> list[Check]:
    return build_checks(scope, "key", Limit(**limits), NOW)


def counter(redis, check: Check) -> int:
    if check.kind == "tpm":
        return int(redis.hget(check.keys[1], "_total") or 0)
    if check.kind in ("rpm", "conc"):
        return int(redis.zcard(check.keys[0]))
    return int(redis.get(check.keys[0]) or 0)


def test_requests_per_minute_is_exact(limiter):
    rpm = checks(requests_per_minute=5)
    accepted = [limiter.reserve(f"j{i}", 1, rpm) for i in range(20)]
    assert sum(not isinstance(a, Refused) for a in accepted) == 5
    refused = accepted[-1]
    assert isinstance(refused, Refused) and refused.reason == "rate_limited"
    assert 59_000 < refused.retry_after_ms <= 60_000


def test_all_or_nothing_across_scopes(limiter, redis):
    key_wide = checks(requests_per_minute=10, tokens_per_day=1000)
    model = build_checks("gw:yandexgpt", "gateway:yandexgpt", Limit(tokens_per_minute=100), NOW)
    assert not isinstance(limiter.reserve("a", 80, key_wide + model), Refused)
    refused = limiter.reserve("b", 30, key_wide + model)
    assert isinstance(refused, Refused) and refused.check.scope == "gateway:yandexgpt"
    assert [counter(redis, c) for c in key_wide + model] == [1, 80, 80]


def test_reserve_settle_refund_exact_to_the_token(limiter, redis):
    scope = checks(tokens_per_minute=10_000, tokens_per_day=50_000, tokens_per_month=90_000)
    for job, reserved in (("a", 1200), ("b", 700), ("c", 333)):
        assert not isinstance(limiter.reserve(job, reserved, scope), Refused)
    assert [counter(redis, c) for c in scope] == [2233] * 3
    assert limiter.settle("a", Reservation(tokens=1200, checks=tuple(scope)), 457)
    assert [counter(redis, c) for c in scope] == [457 + 700 + 333] * 3
    assert limiter.settle("b", Reservation(tokens=700, checks=tuple(scope)), 0)  # failed: refund
    assert limiter.settle("c", Reservation(tokens=333, checks=tuple(scope)), 400)  # over: charged
    assert [counter(redis, c) for c in scope] == [857] * 3
    assert not limiter.settle("c", Reservation(tokens=333, checks=tuple(scope)), 0)  # once only
    assert [counter(redis, c) for c in scope] == [857] * 3


def test_release_undoes_the_request_too(limiter, redis):
    scope = checks(requests_per_minute=1, tokens_per_minute=100, concurrent_jobs=1)
    assert not isinstance(limiter.reserve("a", 50, scope), Refused)
    assert limiter.release("a", Reservation(tokens=50, checks=tuple(scope)))
    assert [counter(redis, c) for c in scope] == [0, 0, 0]
    assert not isinstance(limiter.reserve("b", 50, scope), Refused)


def test_concurrency_slot_is_freed_by_settle_and_by_its_lease(redis):
    short = Limiter(redis, slot_lease_seconds=0.2)
    conc = checks(concurrent_jobs=1)
    assert not isinstance(short.reserve("a", 1, conc), Refused)
    refused = short.reserve("b", 1, conc)
    assert isinstance(refused, Refused) and refused.reason == "concurrency_limited"
    assert short.settle("a", Reservation(tokens=1, checks=tuple(conc)), 1)
    assert not isinstance(short.reserve("b", 1, conc), Refused)
    time.sleep(0.25)  # b's worker died and nobody settled it: the lease ends
    assert not isinstance(short.reserve("c", 1, conc), Refused)


def test_peek_charges_nothing(limiter, redis):
    scope = checks(requests_per_minute=3, tokens_per_minute=100)
    limiter.reserve("a", 40, scope)
    figures = limiter.peek(scope)
    assert [(f.remaining, f.reset_ms <= 60_000) for f in figures] == [(2, True), (60, True)]
    assert [counter(redis, c) for c in scope] == [1, 40]


def test_pending_lists_unsettled_reservations(limiter):
    scope = checks(concurrent_jobs=5)
    limiter.reserve("a", 1, scope)
    limiter.reserve("b", 1, scope)
    limiter.settle("a", Reservation(tokens=1, checks=tuple(scope)), 1)
    assert limiter.pending(0, 10) == ["b"]
    assert limiter.pending(3600, 10) == []


def test_limit_matching():
    assert Limit().applies_to("yandexgpt", "rc")
    assert Limit(model="YandexGPT").applies_to("yandexgpt", "rc")
    assert Limit(model="yandexgpt:rc").applies_to("yandexgpt", "rc")
    assert not Limit(model="yandexgpt:rc").applies_to("yandexgpt", "latest")
    assert not Limit(model="yandexgpt-lite").applies_to("yandexgpt", "latest")
