"""Text embeddings, synchronously: plan → admit → call → settle → record, in the API process.

Decision: an embedding request does not go through the queue. It is one short call (a
GigaChat batch of texts, or one YandexGPT `textEmbedding` call per text), its answer is a
block of vectors that is useless once the client has gone, and a queue would add a Redis
round trip, a worker hop and a stored result for nothing. What a job gets, it gets too:

- the model id resolves and plans like chat (channels, sunset redirects, version fallbacks
  of the same model; never another model or provider, whose vectors would be a different
  space), and a model without the `embeddings` capability is refused (`UnsupportedModel`);
- admission charges the key's and the gateway's limits (`jobs.admission`) before the call,
  with the inputs' estimate as the reserved tokens, and settles to the provider's count;
- the circuit breaker is asked before each candidate and told the outcome; the provider
  metrics are the workers' (`llmgw_provider_calls_total`, latency, tokens);
- the call is written afterwards as a finished job row (`jobs.lifecycle.record_sync`) with
  its attempts, so `/v1/usage`, the job listing and the attempt statistics count it. The
  inputs are not stored (the row's messages are empty) and neither are the vectors.

A process killed during the call leaves no row: the reservation is released by its lease
and the sweeper (`settle_ended` drops reservations whose job was never written).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs import attempts, lifecycle
from jobs.admission import LimitAdmission, settle_job
from jobs.errors import JobError
from jobs.spec import JobRequest, JobSpec, MessageIn
from monitoring.metrics import JOBS_FINISHED, PROVIDER_CALLS, PROVIDER_LATENCY, TOKENS
from providers.base import EmbeddingResult, Provider
from providers.errors import ProviderError, RateLimited
from routing.breaker import CircuitBreaker
from routing.capabilities import CHAT, EMBEDDINGS
from routing.errors import NoRouteAvailable
from routing.plan import FallbackPlan, FallbackPolicy
from routing.service import Route
from routing.snapshot import Catalogue
from storage.models import utcnow

log = logging.getLogger(__name__)

MAX_INPUTS = 256


class UnsupportedModel(JobError):
    """400: the model serves chat, not embeddings (or the reverse: chat with an embedding
    model, refused at submission by `require_chat`)."""

    code = "unsupported_model"


class EmbeddingFailed(JobError):
    """The provider refused or failed every candidate; `reason` is its error's slug."""

    def __init__(self, error: ProviderError, route: Route) -> None:
        self.code = error.reason
        self.reason = error.reason
        self.retry_after = error.retry_after if isinstance(error, RateLimited) else None
        super().__init__(
            f"{route.model_id} ({route.provider}) failed: {error.message}",
            model=route.model_id,
        )


@dataclass(frozen=True)
class Embedded:
    job_id: str
    route: Route
    result: EmbeddingResult
    calls: int
    deprecation_headers: dict[str, str]


@dataclass(frozen=True)
class EmbeddingService:
    sessions: sessionmaker[Session]
    redis: Any
    catalogue: Callable[[], Catalogue]
    planner: Callable[..., FallbackPlan]
    breaker: CircuitBreaker
    admission: LimitAdmission
    providers: Callable[[str], Provider]

    def embed(self, owner: str, model_id: str, texts: tuple[str, ...]) -> Embedded:
        plan = self.planner(model_id, FallbackPolicy(), breaker=self.breaker, key_id=owner)
        catalogue = self.catalogue()
        require_embeddings(catalogue, plan.route)
        candidates = [c.route for c in plan.candidates if serves_embeddings(catalogue, c.route)]
        primary = plan.primary  # NoRouteAvailable when every candidate was skipped
        request = JobRequest(
            model=model_id,
            messages=[MessageIn(role="user", content=t) for t in texts],
            max_tokens=1,
        )
        job_id = uuid.uuid4().hex
        reservation = self.admission.admit(owner, request, plan, job_id)
        spec = JobSpec.build(request, plan, stream=False, reservation=reservation)
        spec = spec.model_copy(update={"messages": [], "max_tokens": None})
        started = utcnow()
        calls: list[tuple[Route, float, ProviderError | None]] = []
        result: EmbeddingResult | None = None
        for candidate in candidates or [primary]:
            if not _circuit_allows(self.breaker, candidate.breaker_key):
                continue
            result, error, latency = self._call(candidate, texts)
            calls.append((candidate, latency, error))
            if error is None or not error.retryable:
                break
        if not calls:  # every circuit opened between the plan and the call
            self.admission.release(job_id, reservation)
            raise NoRouteAvailable(f"No route can serve {model_id!r} now (circuit_open).")
        route, _, error = calls[-1]
        tokens = result.prompt_tokens if result is not None else 0
        self._record(job_id, owner, spec, started, calls, tokens)
        settle_job(self.redis, job_id, spec, tokens)
        if result is None:
            assert error is not None
            raise EmbeddingFailed(error, route)
        return Embedded(job_id, route, result, len(calls), spec.deprecation_headers)

    def _call(
        self, route: Route, texts: tuple[str, ...]
    ) -> tuple[EmbeddingResult | None, ProviderError | None, float]:
        labels = (route.provider, route.model, route.channel)
        began = time.monotonic()
        result: EmbeddingResult | None = None
        error: ProviderError | None = None
        try:
            result = self.providers(route.provider).embed(route.upstream_id, texts)
        except ProviderError as exc:
            error = exc
        latency = time.monotonic() - began
        PROVIDER_CALLS.labels(
            *labels, "failed" if error else "succeeded", error.reason if error else ""
        ).inc()
        PROVIDER_LATENCY.labels(*labels).observe(latency)
        if result is not None:
            TOKENS.labels(*labels, "prompt").inc(result.prompt_tokens)
        try:
            if error is None:
                self.breaker.record_success(route.breaker_key)
            elif error.retryable and not isinstance(error, RateLimited):
                self.breaker.record_failure(route.breaker_key)
        except Exception:
            log.warning(
                "could not record the outcome of circuit %s", route.breaker_key, exc_info=True
            )
        return result, error, latency * 1000

    def _record(
        self,
        job_id: str,
        owner: str,
        spec: JobSpec,
        started: Any,
        calls: list[tuple[Route, float, ProviderError | None]],
        tokens: int,
    ) -> None:
        route, _, error = calls[-1]
        failure = (error.reason, error.message) if error else None
        with self.sessions() as session:
            lifecycle.record_sync(
                session,
                job_id,
                owner,
                route,
                spec,
                started_at=started,
                attempts=len(calls),
                prompt_tokens=tokens,
                error=failure,
            )
            for number, (called, latency, failed) in enumerate(calls, start=1):
                attempts.start_call(session, job_id, number, called)
                attempts.finish_call(session, job_id, number, latency, error=failed)
            session.commit()
        status = "failed" if error else "succeeded"
        JOBS_FINISHED.labels(route.provider, route.model, route.channel, status).inc()


def serves_embeddings(catalogue: Catalogue, route: Route) -> bool:
    return EMBEDDINGS in capabilities_of(catalogue, route)


def capabilities_of(catalogue: Catalogue, route: Route) -> tuple[str, ...]:
    version = catalogue.find(route.model).channel(route.channel)
    return version.capabilities if version is not None else ()


def require_embeddings(catalogue: Catalogue, route: Route) -> None:
    _require(catalogue, route, EMBEDDINGS, "an embedding model")


def require_chat(catalogue: Catalogue, route: Route) -> None:
    """The submission path's check (`jobs.submit.Submitter.check_route`): a completion needs
    a version that serves chat."""
    _require(catalogue, route, CHAT, "a chat model")


def _require(catalogue: Catalogue, route: Route, capability: str, kind: str) -> None:
    have = capabilities_of(catalogue, route)
    if capability in have:
        return
    models = sorted(
        m.name
        for m in catalogue.models.values()
        if any(capability in v.capabilities for v in m.versions)
    )
    raise UnsupportedModel(
        f"{route.model_id} serves {', '.join(have) or 'nothing'}, not {capability}; "
        f"use {kind}: {', '.join(models)}.",
        model=route.model_id,
        capabilities=list(have),
        choices=models,
    )


def _circuit_allows(breaker: CircuitBreaker, key: str) -> bool:
    try:
        return breaker.allow(key)
    except Exception:
        log.warning("circuit %s unreadable; calling anyway", key, exc_info=True)
        return True
