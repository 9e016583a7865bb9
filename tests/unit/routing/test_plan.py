"""Every rule of the fallback plan, against the seeded catalogue."""

from __future__ import annotations

from datetime import datetime

import pytest

from routing import ops
from routing.breaker import CircuitBreaker
from routing.errors import NoRouteAvailable, UnknownModel
from routing.plan import FallbackPolicy, plan, plan_in
from routing.snapshot import load_catalogue

AFTER_SUNSET = datetime(2027, 3, 2)


def make_plan(runtime, model_id, policy=None, **kwargs):
    with runtime.sessions() as session:
        return plan(session, model_id, policy, **kwargs)


def listed(items):
    return [(c.route.model_id, c.reason) for c in items]


def test_rc_falls_back_to_latest_then_deprecated(unit_runtime):
    result = make_plan(unit_runtime, "yandexgpt:rc")
    assert listed(result.candidates) == [
        ("yandexgpt:rc", "requested"),
        ("yandexgpt:latest", "version_fallback"),
        ("yandexgpt:deprecated", "version_fallback"),
    ]
    assert result.skipped == () and result.primary == result.route


def test_latest_falls_back_only_to_older_channels(unit_runtime):
    assert listed(make_plan(unit_runtime, "yandexgpt").candidates) == [
        ("yandexgpt:latest", "requested"),
        ("yandexgpt:deprecated", "version_fallback"),
    ]
    assert listed(make_plan(unit_runtime, "yandexgpt:deprecated").candidates) == [
        ("yandexgpt:deprecated", "requested")
    ]


def test_version_fallbacks_follow_priority(unit_runtime):
    with unit_runtime.sessions() as session:
        deprecated = next(
            v for v in ops.find_model(session, "yandexgpt").versions if v.channel == "deprecated"
        )
        deprecated.priority = 5
        session.commit()
    assert [c.route.channel for c in make_plan(unit_runtime, "yandexgpt:rc").candidates] == [
        "rc",
        "deprecated",
        "latest",
    ]


def test_a_pinned_version_has_no_version_fallback(unit_runtime):
    result = make_plan(unit_runtime, "yandexgpt:22.05.2025")
    assert listed(result.candidates) == [("yandexgpt:rc", "requested")]
    assert result.route.version == "22.05.2025"


def test_explicit_fallbacks_come_after_version_fallbacks_in_the_clients_order(unit_runtime):
    policy = FallbackPolicy(explicit=("yandexgpt-lite:rc", "yandexgpt-32k"))
    assert listed(make_plan(unit_runtime, "yandexgpt", policy).candidates) == [
        ("yandexgpt:latest", "requested"),
        ("yandexgpt:deprecated", "version_fallback"),
        ("yandexgpt-lite:rc", "explicit"),
        ("yandexgpt-32k:latest", "explicit"),
    ]


def test_explicit_fallback_on_another_provider_needs_the_policy(unit_runtime):
    result = make_plan(unit_runtime, "yandexgpt:deprecated", FallbackPolicy(explicit=("GigaChat",)))
    assert listed(result.skipped) == [("GigaChat:latest", "cross_provider_forbidden")]
    allowed = FallbackPolicy(cross_provider=True, explicit=("GigaChat",))
    result = make_plan(unit_runtime, "yandexgpt:deprecated", allowed)
    assert ("GigaChat:latest", "explicit") in listed(result.candidates)


def test_explicit_fallback_ids_are_parsed_strictly(unit_runtime):
    with pytest.raises(UnknownModel):
        make_plan(unit_runtime, "yandexgpt", FallbackPolicy(explicit=("gpt-4",)))


def test_cross_provider_equivalents_only_when_allowed(unit_runtime):
    closed = make_plan(unit_runtime, "yandexgpt:deprecated")
    assert [c.reason for c in closed.candidates] == ["requested"]
    opened = make_plan(unit_runtime, "yandexgpt:deprecated", FallbackPolicy(cross_provider=True))
    assert listed(opened.candidates) == [
        ("yandexgpt:deprecated", "requested"),
        ("GigaChat-Pro:latest", "cross_provider"),
        ("GigaChat-2-Pro:latest", "cross_provider"),
    ]
    assert opened.candidates[1].route.queue == "gigachat.latest"


def test_same_upstream_twice_is_skipped_as_duplicate(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.promote(session, "GigaChat-Pro", actor="t")
        session.commit()
    result = make_plan(unit_runtime, "GigaChat-Pro:rc")
    assert listed(result.candidates) == [
        ("GigaChat-Pro:rc", "requested"),
        ("GigaChat-Pro:deprecated", "version_fallback"),
    ]
    assert listed(result.skipped) == [("GigaChat-Pro:latest", "duplicate")]


def test_context_window_too_small_is_skipped(unit_runtime):
    policy = FallbackPolicy(cross_provider=True)
    result = make_plan(unit_runtime, "yandexgpt:deprecated", policy, estimated_tokens=32500)
    assert listed(result.skipped) == [("yandexgpt:deprecated", "context_too_small")]
    assert listed(result.candidates) == [
        ("GigaChat-Pro:latest", "cross_provider"),
        ("GigaChat-2-Pro:latest", "cross_provider"),
    ]
    # Past every 32k window, the GigaChat-2 family's 131,072 is the bigger-window fallback.
    bigger = make_plan(unit_runtime, "yandexgpt", policy, estimated_tokens=100_000)
    assert listed(bigger.candidates) == [("GigaChat-2-Pro:latest", "cross_provider")]
    assert result.primary.model == "GigaChat-Pro"


def test_open_circuit_is_skipped(unit_runtime):
    breaker = CircuitBreaker(unit_runtime.redis, min_calls=2, failure_rate=0.5)
    for _ in range(2):
        breaker.record_failure("yandexgpt:yandexgpt:rc")
    result = make_plan(unit_runtime, "yandexgpt:rc", breaker=breaker)
    assert listed(result.skipped) == [("yandexgpt:rc", "circuit_open")]
    assert result.primary.channel == "latest"
    assert breaker.state("yandexgpt:yandexgpt:rc").state == "open"  # planning took no probe


def test_fallback_past_its_sunset_is_skipped(unit_runtime):
    with unit_runtime.sessions() as session:
        cat = load_catalogue(session)
    result = plan_in(cat, "yandexgpt:rc", now=AFTER_SUNSET)
    assert listed(result.skipped) == [("yandexgpt:deprecated", "past_sunset")]


def test_requested_past_sunset_is_redirected_first(unit_runtime):
    with unit_runtime.sessions() as session:
        cat = load_catalogue(session)
    result = plan_in(cat, "yandexgpt:deprecated", now=AFTER_SUNSET)
    assert listed(result.candidates)[0] == ("yandexgpt:latest", "sunset_redirect")
    assert result.route.redirected_from == "yandexgpt:deprecated"


def test_explicit_fallback_past_sunset_under_reject_policy_is_skipped(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.set_policy(session, "yandexgpt-lite", actor="t", sunset_policy="reject")
        session.commit()
        cat = load_catalogue(session)
    policy = FallbackPolicy(explicit=("yandexgpt-lite:deprecated",))
    result = plan_in(cat, "yandexgpt:latest", policy, now=AFTER_SUNSET)
    assert ("yandexgpt-lite:deprecated", "past_sunset") in listed(result.skipped)


def test_retired_channels_are_not_proposed(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.retire(session, "yandexgpt:deprecated", actor="t")
        session.commit()
    assert listed(make_plan(unit_runtime, "yandexgpt").candidates) == [
        ("yandexgpt:latest", "requested")
    ]


def test_no_candidate_left_raises_no_route_available(unit_runtime):
    result = make_plan(unit_runtime, "GigaChat-Max", estimated_tokens=10**6)
    assert result.candidates == ()
    with pytest.raises(NoRouteAvailable) as error:
        _ = result.primary
    assert error.value.details["skipped"][0]["reason"] == "context_too_small"


def test_plan_serializes_with_reasons(unit_runtime):
    data = make_plan(unit_runtime, "yandexgpt:rc", FallbackPolicy(cross_provider=True)).as_dict()
    assert data["candidates"][0]["route"]["queue"] == "yandexgpt.rc"
    assert {c["reason"] for c in data["candidates"]} == {
        "requested",
        "version_fallback",
        "cross_provider",
    }
    assert data["policy"] == {"cross_provider": True, "explicit": [], "source": "request"}


def test_a_key_policy_overrides_the_request(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.set_key_policy(session, "user1", actor="t", cross_provider=False)
        ops.set_key_policy(session, "user2", actor="t", cross_provider=True)
        session.commit()
    asks = FallbackPolicy(cross_provider=True, explicit=("GigaChat",))
    denied = make_plan(unit_runtime, "yandexgpt:deprecated", asks, key_id="user1")
    assert denied.policy.cross_provider is False and denied.policy_source == "key"
    assert listed(denied.skipped) == [("GigaChat:latest", "cross_provider_forbidden")]
    granted = make_plan(unit_runtime, "yandexgpt:deprecated", key_id="user2")
    assert ("GigaChat-Pro:latest", "cross_provider") in listed(granted.candidates)
    undecided = make_plan(unit_runtime, "yandexgpt:deprecated", asks, key_id="user3")
    assert undecided.policy_source == "request" and undecided.policy.cross_provider


def test_clearing_a_key_policy_gives_the_request_back(unit_runtime):
    with unit_runtime.sessions() as session:
        ops.set_key_policy(session, "user1", actor="t", cross_provider=False)
        event = ops.set_key_policy(session, "user1", actor="t", cross_provider=None)
        session.commit()
        assert (event.model, event.before, event.after) == (
            "key:user1",
            {"cross_provider": False},
            {"cross_provider": None},
        )
    result = make_plan(
        unit_runtime, "yandexgpt", FallbackPolicy(cross_provider=True), key_id="user1"
    )
    assert result.policy_source == "request"
