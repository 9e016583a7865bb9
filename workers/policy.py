"""What happens after a failed call: a pure decision, tested without Celery or a database.

Retry the same candidate (full-jitter exponential backoff, a provider's Retry-After as a
floor), move to the plan's next candidate, or fail the job. A content filter or a context
overflow goes to the next candidate at once (another may not have it); other permanent
errors fail the job; the job's budget (calls and deadline) bounds everything.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from providers.errors import ProviderError, RateLimited
from workers.context import RetryPolicy

MAX_BACKOFF_SECONDS = 300.0
# Permanent errors that another candidate may not have: go straight to the next one.
FALLBACK_TRIGGERS = frozenset({"content_filtered", "context_too_long"})


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "move_on", "fail"]
    delay: float | None = None


def decide(
    error: ProviderError,
    *,
    failed_here: int,
    calls: int,
    age_seconds: float,
    policy: RetryPolicy,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Decision:
    """`failed_here`: failed calls on this candidate; `calls`: the job's calls so far."""
    budget = calls < policy.attempt_budget and age_seconds < policy.deadline_seconds
    if error.retryable and failed_here < policy.max_attempts and budget:
        return Decision("retry", backoff_seconds(failed_here, error, uniform))
    if budget and (error.retryable or error.reason in FALLBACK_TRIGGERS):
        return Decision("move_on")
    return Decision("fail")


def backoff_seconds(
    attempt: int, error: ProviderError, uniform: Callable[[float, float], float] = random.uniform
) -> float:
    """Full-jitter exponential backoff; a provider's Retry-After is a floor, within the cap."""
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
    delay = uniform(0, ceiling)
    if isinstance(error, RateLimited) and error.retry_after:
        delay = max(delay, error.retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)
