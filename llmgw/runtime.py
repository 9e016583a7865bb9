"""Shared resources of one process (API or worker), built from settings on demand.

Nothing here connects at construction: the engine and Redis client connect on first use.
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

    from providers.base import Provider
    from providers.config import ProviderConfig
    from routing.breaker import CircuitBreaker


class ConfigurationError(RuntimeError):
    pass


class Runtime:
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
    def celery(self) -> Celery:
        from workers.celery_app import make_celery

        return make_celery(self.settings, runtime=self)

    @cached_property
    def breaker(self) -> CircuitBreaker:
        from routing.breaker import CircuitBreaker

        return CircuitBreaker(self.redis)

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
