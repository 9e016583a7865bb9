"""One typed hierarchy for everything a provider call can fail with.

Each error has a short bounded `reason` slug; it feeds the API error body, the attempt
log and the `error_class` metric label. `retryable` tells the worker's retry loop what
to do; providers never retry by themselves.
"""

from __future__ import annotations


class ProviderError(Exception):
    reason = "provider_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetryableError(ProviderError):
    retryable = True


class ProviderTimeout(RetryableError):
    reason = "timeout"


class ProviderConnectionError(RetryableError):
    reason = "connection"


class RateLimited(RetryableError):
    reason = "rate_limited"

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamServerError(RetryableError):
    reason = "upstream_5xx"


class MalformedResponse(RetryableError):
    reason = "malformed_response"


class StreamInterrupted(RetryableError):
    """A streamed answer ended without its final chunk: the connection broke or timed out,
    or the provider sent an error event mid-stream."""

    reason = "stream_interrupted"


class PermanentError(ProviderError):
    retryable = False


class AuthError(PermanentError):
    reason = "auth"


class BadRequest(PermanentError):
    reason = "bad_request"


class ContentFiltered(PermanentError):
    reason = "content_filtered"


class ContextTooLong(PermanentError):
    reason = "context_too_long"


class ModelNotFound(PermanentError):
    reason = "model_not_found"


class PaymentRequired(PermanentError):
    reason = "payment_required"
