"""Circuit breaker transitions, with a controlled clock, on Redis (fakeredis runs the Lua)."""

from __future__ import annotations

import threading

import fakeredis
import pytest

from routing.breaker import CircuitBreaker
from storage import keys

KEY = "yandexgpt:yandexgpt:rc"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def breaker(clock):
    return CircuitBreaker(
        fakeredis.FakeRedis(),
        window_seconds=60,
        min_calls=4,
        failure_rate=0.5,
        cooldown_seconds=30,
        probe_timeout_seconds=10,
        clock=clock,
    )


def test_stays_closed_below_the_minimum_number_of_calls(breaker):
    for _ in range(3):
        assert breaker.record_failure(KEY) == "closed"
    assert breaker.allow(KEY)


def test_opens_on_the_failure_rate_once_enough_calls(breaker):
    breaker.record_success(KEY)
    breaker.record_success(KEY)
    breaker.record_failure(KEY)
    assert breaker.record_failure(KEY) == "open"  # 2 of 4 = 50 %
    assert not breaker.allow(KEY)
    assert breaker.is_open(KEY)


def test_a_low_failure_rate_keeps_it_closed(breaker):
    for _ in range(7):
        breaker.record_success(KEY)
    for _ in range(3):
        assert breaker.record_failure(KEY) == "closed"  # 3 of 10


def test_the_window_forgets_old_calls(breaker, clock):
    for _ in range(3):
        breaker.record_failure(KEY)
    clock.now += 61
    assert breaker.record_failure(KEY) == "closed"
    assert breaker.state(KEY).calls == 1


def open_it(breaker):
    for _ in range(4):
        breaker.record_failure(KEY)


def test_half_open_lets_exactly_one_probe_through(breaker, clock):
    open_it(breaker)
    clock.now += 30
    assert breaker.allow(KEY)  # the probe
    assert not breaker.allow(KEY)
    assert breaker.is_open(KEY)
    clock.now += 10  # the probe timed out: another caller may probe
    assert breaker.allow(KEY)


def test_probe_success_closes_with_a_fresh_window(breaker, clock):
    open_it(breaker)
    clock.now += 30
    assert breaker.allow(KEY)
    assert breaker.record_success(KEY) == "closed"
    assert breaker.allow(KEY) and breaker.state(KEY).calls == 0


def test_probe_failure_opens_again_for_a_full_cooldown(breaker, clock):
    open_it(breaker)
    clock.now += 30
    assert breaker.allow(KEY)
    assert breaker.record_failure(KEY) == "open"
    clock.now += 29
    assert not breaker.allow(KEY)
    clock.now += 1
    assert breaker.allow(KEY)


def test_cooldown_is_extended_as_max_never_shortened(breaker, clock):
    open_it(breaker)
    first = breaker.state(KEY).open_until
    clock.now += 20
    breaker.record_failure(KEY)  # a call in flight fails during the cooldown
    assert breaker.state(KEY).open_until == first + 20
    clock.now -= 15  # a worker with a clock behind must not shorten it
    breaker.record_failure(KEY)
    assert breaker.state(KEY).open_until == first + 20


def test_concurrent_failures_open_once_and_keep_the_latest_deadline(clock):
    client = fakeredis.FakeRedis()
    breakers = [CircuitBreaker(client, min_calls=4, clock=clock) for _ in range(8)]
    threads = [
        threading.Thread(target=lambda b=b: [b.record_failure(KEY) for _ in range(25)])
        for b in breakers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = breakers[0].state(KEY)
    assert state.state == "open" and state.fails == 200 and state.calls == 200
    assert state.open_until == clock.now + 30


def test_circuits_are_independent_and_keyed_in_the_llmgw_namespace(breaker):
    open_it(breaker)
    assert breaker.allow("yandexgpt:yandexgpt:latest")
    assert breaker.open_keys([KEY, "gigachat:GigaChat:rc"]) == {KEY}
    assert breaker.redis.exists(keys.circuit(KEY)) and keys.circuit(KEY).startswith("llmgw:cb:")
    assert 0 < breaker.redis.ttl(keys.circuit(KEY)) <= 3600


def test_route_breaker_key(unit_runtime):
    from routing.service import resolve

    with unit_runtime.sessions() as session:
        assert resolve(session, "GigaChat-Pro:rc").breaker_key == "gigachat:GigaChat-Pro:rc"


def test_a_look_says_closed_only_where_allow_would_not_write(breaker, clock):
    """`look` (the plan's read): closed = no state or `closed`; open past its deadline and
    half-open are neither open nor closed, since their next call is the script's probe."""
    other, fresh = "gigachat:GigaChat:rc", "gigachat:GigaChat:latest"
    breaker.record_success(other)
    open_it(breaker)
    seen = breaker.look([KEY, other, fresh])
    assert (seen.open, seen.closed) == ({KEY}, {other, fresh})
    clock.now += 31  # past the cooldown: the next call probes
    seen = breaker.look([KEY])
    assert KEY not in seen.open and KEY not in seen.closed
    assert breaker.allow(KEY)  # the probe taken: half-open, refusing the others
    assert breaker.look([KEY]).open == {KEY}
