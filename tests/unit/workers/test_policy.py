"""The retry/fallback decision, as a pure function."""

from __future__ import annotations

import pytest

from providers.errors import (
    AuthError,
    ContentFiltered,
    ContextTooLong,
    RateLimited,
    UpstreamServerError,
)
from workers.context import RetryPolicy
from workers.policy import MAX_BACKOFF_SECONDS, backoff_seconds, decide

POLICY = RetryPolicy(max_attempts=3, attempt_budget=8, deadline_seconds=900)


def top(low: float, high: float) -> float:
    return high


def run(error, failed_here=1, calls=1, age=0.0):
    return decide(
        error, failed_here=failed_here, calls=calls, age_seconds=age, policy=POLICY, uniform=top
    )


def test_a_retryable_error_is_retried_with_backoff():
    decision = run(UpstreamServerError("503"), failed_here=2)
    assert decision.action == "retry" and decision.delay == 2.0


def test_after_max_attempts_the_next_candidate():
    assert run(UpstreamServerError("503"), failed_here=3, calls=3).action == "move_on"


@pytest.mark.parametrize("error", [ContentFiltered("no"), ContextTooLong("big")])
def test_a_filter_or_an_overflow_goes_to_the_next_candidate_at_once(error):
    assert run(error).action == "move_on"


def test_other_permanent_errors_fail():
    assert run(AuthError("bad key")).action == "fail"


def test_the_budget_bounds_everything():
    assert run(UpstreamServerError("503"), calls=8).action == "fail"
    assert run(UpstreamServerError("503"), age=901).action == "fail"


def test_retry_after_is_a_floor_within_the_cap():
    assert backoff_seconds(1, RateLimited("slow down", retry_after=7.0), top) == 7.0
    assert backoff_seconds(1, RateLimited("x", retry_after=9999), top) == MAX_BACKOFF_SECONDS
