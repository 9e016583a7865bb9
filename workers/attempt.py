"""One provider call, plain or streamed, and what is observed about it.

`run_attempt` is the one runner: a plain call is `Provider.complete`; a streamed call is
`Provider.stream` with each delta handed to a sink (the job's Redis stream) as it arrives.
Either way it returns the whole answer or the error, never raises, and says whether any
text reached the sink (after that a failure cannot be retried behind the reader's back).

`observe` is the one instrumented step after every call, for any provider: the breaker's
outcome and the provider metrics. It runs after the attempt is recorded in the database and
is guarded: Redis being down must never cost an answer already received.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from monitoring.metrics import PROVIDER_CALLS, PROVIDER_LATENCY, TOKENS
from providers.base import CompletionRequest, CompletionResult, Provider, StreamChunk, Usage
from providers.errors import ProviderError, RateLimited, StreamInterrupted
from routing.breaker import CircuitBreaker

log = logging.getLogger(__name__)


class Sink(Protocol):
    def delta(self, content: str) -> None: ...


@dataclass(frozen=True)
class AttemptRun:
    latency_ms: float
    result: CompletionResult | None = None
    error: ProviderError | None = None
    published: bool = False  # some text reached the sink


def run_attempt(provider: Provider, request: CompletionRequest, sink: Sink | None) -> AttemptRun:
    t0 = time.perf_counter()
    relay = _Relay(sink)
    try:
        result = relay.stream(provider, request) if sink else provider.complete(request)
        error = None
    except ProviderError as exc:
        result, error = None, exc
    except Exception as exc:  # a bug in an adapter, or Redis gone: the job must still end
        log.exception("unexpected error calling %s", type(provider).__name__)
        result, error = None, ProviderError(f"Unexpected {type(exc).__name__} during the call.")
    latency = (time.perf_counter() - t0) * 1000
    return AttemptRun(latency, result, error, published=relay.parts > 0)


class _Relay:
    def __init__(self, sink: Sink | None) -> None:
        self.sink, self.parts = sink, 0
        self.text: list[str] = []

    def stream(self, provider: Provider, request: CompletionRequest) -> CompletionResult:
        assert self.sink is not None
        for chunk in provider.stream(request):
            if chunk.delta:
                self.sink.delta(chunk.delta)
                self.text.append(chunk.delta)
                self.parts += 1
            if chunk.is_final:
                return _as_result(request, "".join(self.text), chunk)
        raise StreamInterrupted("The provider's stream ended without a final chunk.")


def _as_result(request: CompletionRequest, content: str, final: StreamChunk) -> CompletionResult:
    return CompletionResult(
        content=content,
        finish_reason=final.finish_reason or "stop",
        usage=final.usage or Usage(0, 0, 0),
        model_version=final.model_version,
        upstream_model=request.upstream_model,
        tool_calls=final.tool_calls,
    )


def observe(breaker: CircuitBreaker, circuit: str, labels: tuple[str, ...], run: AttemptRun):
    """Breaker outcome and provider metrics for one call; never raises."""
    error = run.error
    PROVIDER_CALLS.labels(
        *labels, "failed" if error else "succeeded", error.reason if error else ""
    ).inc()
    PROVIDER_LATENCY.labels(*labels).observe(run.latency_ms / 1000)
    if run.result is not None:
        TOKENS.labels(*labels, "prompt").inc(run.result.usage.prompt_tokens)
        TOKENS.labels(*labels, "completion").inc(run.result.usage.completion_tokens)
    try:
        if error is None:
            breaker.record_success(circuit)
        elif error.retryable and not isinstance(error, RateLimited):
            # Only upstream health counts: a content filter is no outage, and a 429 is our
            # own quota, paced by Retry-After rather than by switching the route off.
            breaker.record_failure(circuit)
    except Exception:
        log.warning("could not record the outcome of circuit %s", circuit, exc_info=True)


def circuit_allows(breaker: CircuitBreaker, circuit: str) -> bool:
    """The breaker's verdict; with Redis unreachable the call goes ahead (fail open)."""
    try:
        return breaker.allow(circuit)
    except Exception:
        log.warning("circuit %s unreadable; calling anyway", circuit, exc_info=True)
        return True
