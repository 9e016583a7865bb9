"""The container: one process's services (API, worker or CLI), built from settings on demand.

Nothing here connects at construction: the engine and the Redis client connect on first use.
This is the only place that knows every service; the domain packages receive the pieces
they use (`worker_context`, a session factory, the breaker), never this; the API sees it
only through the `api.context.ApiServices` protocol.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from llmgw.settings import Settings
from storage.db import make_engine, make_session_factory

if TYPE_CHECKING:
    from celery import Celery

    from api.context import ApiConfig
    from jobs.admission import LimitAdmission
    from jobs.answered import Ran
    from jobs.callbacks import CallbackConfig, Deliverer
    from jobs.embeddings import EmbeddingService
    from jobs.events import DoneListener
    from jobs.spec import JobSpec
    from jobs.submit import Gate, Submitted, Submitter
    from jobs.tokens import TokenCounter
    from monitoring.collectors import RedisStateCollector
    from providers.base import Provider
    from providers.config import ProviderConfig
    from routing.breaker import CircuitBreaker
    from routing.cache import Resolver
    from routing.service import Route
    from workers.context import WorkerContext
    from workers.pacing import Pacer


class ConfigurationError(RuntimeError):
    pass


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def redis(self) -> redis.Redis:
        if not self.settings.redis_url:
            raise ConfigurationError("LLMGW_REDIS_URL is not set (llmgw up sets it for you).")
        pool = redis.BlockingConnectionPool.from_url(
            self.settings.redis_url, max_connections=200, timeout=10, socket_timeout=10
        )
        return redis.Redis(connection_pool=pool)

    @cached_property
    def done_listener(self) -> DoneListener:
        """One pub/sub connection per process for every waiter (`jobs.events`)."""
        from jobs.events import DoneListener

        return DoneListener(self.redis)

    @cached_property
    def breaker(self) -> CircuitBreaker:
        from routing.breaker import CircuitBreaker

        return CircuitBreaker(self.redis)

    @cached_property
    def resolver(self) -> Resolver:
        from routing.cache import Resolver

        return Resolver(self.sessions, self.redis)

    @cached_property
    def provider_configs(self) -> dict[str, ProviderConfig]:
        from llmgw.provider_configs import provider_configs

        return provider_configs(self.settings)

    def provider(self, name: str) -> Provider:
        with self._lock:
            if name not in self._providers:
                from providers.registry import build_provider

                config = self.provider_configs[name]
                self._providers[name] = build_provider(name, config, redis=self.redis)
            return self._providers[name]

    @cached_property
    def celery(self) -> Celery:
        from workers.celery_app import CeleryConfig, configure_celery

        config = CeleryConfig(
            broker_url=self.settings.redis_url,
            concurrency=self.settings.worker_concurrency,
            sweeper_interval_seconds=self.settings.sweeper_interval_seconds,
            batch_feeder_interval_seconds=self.settings.batch_feeder_interval_seconds,
            callback_interval_seconds=self.settings.callback_interval_seconds,
        )
        return configure_celery(config, lambda: self.worker_context)

    @cached_property
    def submitter(self) -> Submitter:
        from jobs.dispatch import CeleryDispatcher
        from jobs.submit import Submitter

        return Submitter(
            sessions=self.sessions,
            redis=self.redis,
            planner=self.resolver,
            circuits=self.breaker,
            dispatcher=CeleryDispatcher(self.celery),
            idempotency_grace_seconds=self.settings.idempotency_grace_seconds,
            admission=self.admission,
            counter=self.token_counter if self.settings.tokenizer_at_submit else None,
            check_route=self._require_chat,
        )

    def _require_chat(self, route: Route) -> None:
        from jobs.embeddings import require_chat

        require_chat(self.resolver.catalogue(), route)

    @cached_property
    def token_counter(self) -> TokenCounter:
        from jobs.tokens import TokenCounter

        return TokenCounter(
            redis=self.redis,
            providers=self.provider,
            resolve=self.resolver.resolve,
            timeout_seconds=self.settings.tokenizer_timeout_seconds,
        )

    @cached_property
    def admission(self) -> LimitAdmission:
        from api.auth import request_policy
        from jobs.admission import LimitAdmission
        from storage.limits import Limiter

        s = self.settings
        limiter = Limiter(self.redis, slot_lease_seconds=s.limits_slot_lease_seconds)
        return LimitAdmission(
            self.sessions, limiter, s.limits_default_max_tokens, known=request_policy
        )

    @cached_property
    def embedder(self) -> EmbeddingService:
        from jobs.embeddings import EmbeddingService

        return EmbeddingService(
            sessions=self.sessions,
            redis=self.redis,
            catalogue=self.resolver.catalogue,
            planner=self.resolver.plan,
            breaker=self.breaker,
            admission=self.admission,
            providers=self.provider,
        )

    @cached_property
    def worker_context(self) -> WorkerContext:
        from jobs.dispatch import CeleryDispatcher
        from jobs.feeder import FeedPolicy
        from workers.context import RetryPolicy, SweepPolicy, WorkerContext
        from workers.heartbeat import LeaseKeeper
        from workers.held import HeldMessages
        from workers.queues import MAINTENANCE_QUEUE

        s = self.settings
        dispatcher = CeleryDispatcher(self.celery)
        return WorkerContext(
            sessions=self.sessions,
            redis=self.redis,
            breaker=self.breaker,
            resolver=self.resolver,
            providers=self.provider,
            dispatcher=dispatcher,
            retry=RetryPolicy(s.job_max_attempts, s.job_attempt_budget, s.job_deadline_seconds),
            sweep=SweepPolicy(
                s.job_lease_seconds, s.job_requeue_after_seconds, s.job_retention_days
            ),
            leases=LeaseKeeper(self.sessions, s.job_lease_seconds),
            pacer=self.pacer,
            submitter=self.submitter,
            # Batch lines leave half the threads to interactive jobs unless set otherwise.
            feed=FeedPolicy(
                s.batch_window, s.batch_max_in_flight or max(1, s.worker_concurrency // 2)
            ),
            kick_batch=lambda batch_id: dispatcher.kick_feeder(MAINTENANCE_QUEUE, batch_id),
            callbacks=self.deliverer,
            kick_callbacks=self.kick_callbacks,
            held=HeldMessages(self.redis, s.job_lease_seconds),
        )

    @cached_property
    def pacer(self) -> Pacer:
        """Provider pacing per credential; a lease outlasts one read (longer calls renew)."""
        from workers.pacing import PaceLimit, Pacer

        limits = {
            name: PaceLimit(config.quota_holder, config.max_in_flight, config.max_calls_per_second)
            for name, config in self.provider_configs.items()
        }
        lease = self.settings.provider_connect_timeout + self.settings.provider_read_timeout
        return Pacer(
            self.redis if any(lim.capped for lim in limits.values()) else None, limits, lease
        )

    @cached_property
    def collector(self) -> RedisStateCollector:
        from monitoring.collectors import redis_state_collector
        from workers.queues import all_queue_names

        queues = [*all_queue_names(), self.celery.conf.task_default_queue]
        return redis_state_collector(self.redis, self.resolver, queues)

    @cached_property
    def api_config(self) -> ApiConfig:
        from api.context import ApiConfig

        s = self.settings
        return ApiConfig(
            master_key=s.master_key,
            max_wait_seconds=s.max_wait_seconds,
            sync_timeout_seconds=s.sync_timeout_seconds,
            max_body_bytes=s.max_body_bytes,
            sync_inline=s.sync_inline,
        )

    def open_first(
        self, route: Route, spec: JobSpec, *, circuit_closed: bool = False
    ) -> Gate | None:
        """May a sync request's job run here call its route now (`workers.inline`)? The
        submission's `opener`: a gate means insert it `running`, already claimed."""
        from workers.inline import open_first

        return open_first(self.worker_context, route, spec, circuit_closed=circuit_closed)

    def run_here(self, submitted: Submitted) -> Ran:
        """Run a sync request's job in this (API) thread (`workers.inline`): has it ended,
        and with which answer (`jobs.answered`)?"""
        from workers.inline import run_here

        return run_here(self.worker_context, submitted.job_id, submitted.started)

    @cached_property
    def callbacks(self) -> CallbackConfig:
        from jobs.callback_url import UrlPolicy, parse_networks
        from jobs.callbacks import CallbackConfig, RetrySchedule

        s = self.settings
        return CallbackConfig(
            signing_secret=s.callback_signing_secret,
            url_policy=UrlPolicy(
                s.callback_allow_private, parse_networks(s.callback_allowed_cidrs)
            ),
            schedule=RetrySchedule(
                s.callback_backoff_base_seconds,
                s.callback_backoff_max_seconds,
                s.callback_retry_window_seconds,
            ),
            timeout_seconds=s.callback_timeout_seconds,
        )

    @cached_property
    def deliverer(self) -> Deliverer:
        """Delivers callbacks with the API's own JSON of the job or batch."""
        from api.callbacks import callback_body
        from jobs.callbacks import Deliverer

        return Deliverer(self.sessions, self.callbacks, render=callback_body)

    def kick_callbacks(self) -> None:
        """Ask a worker to deliver due callbacks now (beat runs it anyway)."""
        from jobs.dispatch import CeleryDispatcher
        from workers.queues import MAINTENANCE_QUEUE

        CeleryDispatcher(self.celery).kick_callbacks(MAINTENANCE_QUEUE)

    def kick_feeder(self) -> None:
        """Ask a worker to run the batch feeder now (a new batch; beat runs it anyway)."""
        from jobs.dispatch import CeleryDispatcher
        from workers.queues import MAINTENANCE_QUEUE

        CeleryDispatcher(self.celery).kick_feeder(MAINTENANCE_QUEUE)
