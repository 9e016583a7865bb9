"""What the API's views use, as a protocol: the composition root passes an object that has
these (its container), and nothing in api/ knows more of it than this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from flask import current_app
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobs.admission import LimitAdmission
from jobs.answered import Ran
from jobs.callbacks import CallbackConfig
from jobs.embeddings import EmbeddingService
from jobs.events import DoneListener
from jobs.spec import JobSpec
from jobs.submit import Gate, Submitted, Submitter
from jobs.tokens import TokenCounter
from monitoring.collectors import RedisStateCollector
from routing.breaker import CircuitBreaker
from routing.cache import Resolver
from routing.service import Route


@dataclass(frozen=True)
class ApiConfig:
    master_key: SecretStr | None = None
    # Seconds a `GET /v1/jobs/<id>?wait=` may hold a request.
    max_wait_seconds: float = 30.0
    # How long `POST /v1/chat/completions` waits for its job before answering 504.
    sync_timeout_seconds: float = 120.0
    # A request body larger than this is a 413 (Flask's MAX_CONTENT_LENGTH).
    max_body_bytes: int = 4 * 1024 * 1024
    # A non-streamed sync request's job is run by the API thread that waits for it.
    sync_inline: bool = False


class ApiServices(Protocol):
    @property
    def api_config(self) -> ApiConfig: ...
    @property
    def sessions(self) -> sessionmaker[Session]: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def redis(self) -> Any: ...
    @property
    def done_listener(self) -> DoneListener: ...
    @property
    def resolver(self) -> Resolver: ...
    @property
    def breaker(self) -> CircuitBreaker: ...
    @property
    def submitter(self) -> Submitter: ...
    @property
    def collector(self) -> RedisStateCollector: ...
    @property
    def admission(self) -> LimitAdmission: ...
    @property
    def embedder(self) -> EmbeddingService: ...
    @property
    def token_counter(self) -> TokenCounter: ...
    @property
    def callbacks(self) -> CallbackConfig: ...
    def kick_feeder(self) -> None: ...
    def open_first(
        self, route: Route, spec: JobSpec, *, circuit_closed: bool = False
    ) -> Gate | None: ...
    def run_here(self, submitted: Submitted) -> Ran: ...
    def kick_callbacks(self) -> None: ...


def services() -> ApiServices:
    """The services of the app handling the current request."""
    return current_app.extensions["llmgw"]
