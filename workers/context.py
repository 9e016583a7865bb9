"""What the worker's code uses, built once per process by the composition root.

The task hands `execute_job` and `sweep` this context; below them every function takes only
the pieces it needs (a session factory, the breaker, a provider, a number of the policy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs.callbacks import Deliverer
from jobs.dispatch import Dispatcher
from jobs.feeder import FeedPolicy
from jobs.submit import Submitter
from providers.base import Provider
from routing.breaker import CircuitBreaker
from workers.heartbeat import LeaseKeeper
from workers.held import HeldMessages
from workers.pacing import Pacer


@dataclass(frozen=True)
class RetryPolicy:
    """Per candidate `max_attempts` calls for retryable errors; per job `attempt_budget` calls
    and `deadline_seconds` from submission, across the whole fallback plan."""

    max_attempts: int = 3
    attempt_budget: int = 8
    deadline_seconds: float = 900.0


@dataclass(frozen=True)
class SweepPolicy:
    lease_seconds: float = 45.0
    requeue_after_seconds: float = 900.0
    retention_days: float = 30.0


@dataclass(frozen=True)
class WorkerContext:
    sessions: sessionmaker[Session]
    redis: Any
    breaker: CircuitBreaker
    resolver: Any  # a `routing.cache.Resolver` (its `resolve`)
    providers: Callable[[str], Provider]
    dispatcher: Dispatcher
    retry: RetryPolicy
    sweep: SweepPolicy
    leases: LeaseKeeper
    # Provider pacing; the default paces nothing (no Redis needed).
    pacer: Pacer = field(default_factory=lambda: Pacer(None, {}))
    # The batch feeder submits lines through the one submission path.
    submitter: Submitter | None = None
    feed: FeedPolicy = field(default_factory=FeedPolicy)
    # Completion callbacks: the delivery run, and a kick when a job that has one ends.
    callbacks: Deliverer | None = None
    kick_callbacks: Callable[[], None] = field(default=lambda: None)
    # Sends the feeder task for one batch (a refill as its lines end); None: beat only.
    kick_batch: Callable[[str], None] | None = None
    # The run_job messages this process holds, so a dead worker's are published again.
    held: HeldMessages | None = None
