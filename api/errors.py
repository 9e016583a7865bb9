"""Domain errors → `{"error": {"code", "message", ...}}` with the right status, in one place."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from jobs.admission import LimitExceeded, ModelNotAllowed
from jobs.callbacks import CallbacksUnavailable
from jobs.errors import (
    BatchNotCancellable,
    BatchNotFound,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidBatch,
    InvalidCursor,
    JobError,
    JobNotCancellable,
    JobNotFound,
    QueueUnavailable,
)
from routing.errors import (
    CatalogueConflict,
    ContextTooLong,
    MalformedModelId,
    ModelSunset,
    NoRouteAvailable,
    RoutingError,
    UnknownChannel,
    UnknownModel,
    UnknownVersion,
)

log = logging.getLogger(__name__)
# Seconds a client is asked to wait when a backing service is down (Redis restarts in ~1 s).
UNAVAILABLE_RETRY_AFTER = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


ROUTING_ERRORS: dict[type[RoutingError], tuple[int, str]] = {
    MalformedModelId: (400, "invalid_model_id"),
    UnknownModel: (404, "model_not_found"),
    UnknownChannel: (404, "channel_not_found"),
    UnknownVersion: (404, "version_not_found"),
    ModelSunset: (410, "model_sunset"),
    NoRouteAvailable: (503, "no_route_available"),
    ContextTooLong: (400, "context_length_exceeded"),
    CatalogueConflict: (409, "catalogue_conflict"),
}
JOB_ERRORS: dict[type[JobError], int] = {
    JobNotFound: 404,
    JobNotCancellable: 409,
    IdempotencyKeyReused: 409,
    IdempotencyKeyInUse: 409,
    QueueUnavailable: 503,
    ModelNotAllowed: 403,
    InvalidCursor: 400,
    InvalidBatch: 400,
    BatchNotFound: 404,
    BatchNotCancellable: 409,
    CallbacksUnavailable: 503,
}

# Statuses whose code is ours rather than werkzeug's name for them.
HTTP_CODES = {413: "request_too_large"}


def error_response(status: int, code: str, message: str, **details: Any):
    return jsonify({"error": {"code": code, "message": message, **details}}), status


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.details)

    @app.errorhandler(RoutingError)
    def _routing_error(exc: RoutingError):
        status, code = ROUTING_ERRORS.get(type(exc), (400, "invalid_model"))
        return error_response(status, code, exc.message, choices=exc.choices, **exc.details)

    @app.errorhandler(JobError)
    def _job_error(exc: JobError):
        return error_response(JOB_ERRORS.get(type(exc), 400), exc.code, exc.message, **exc.details)

    @app.errorhandler(LimitExceeded)
    def _limit_exceeded(exc: LimitExceeded):
        body, status = error_response(429, exc.code, exc.message, **exc.details)
        return body, status, {"Retry-After": str(exc.retry_after)}

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        problems = validation_problems(exc)
        summary = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        return error_response(
            400, "invalid_request", f"The request body is invalid: {summary}", problems=problems
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = HTTP_CODES.get(exc.code or 500) or (exc.name or "error").lower().replace(" ", "_")
        body, status = error_response(exc.code or 500, code, exc.description or exc.name)
        kept = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}  # e.g. Allow
        return body, status, kept

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(exc: Exception):
        log.warning("Redis unavailable: %r", exc)
        body, status = error_response(
            503, "unavailable", "The gateway's Redis is unavailable; retry shortly."
        )
        return body, status, {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "An internal error occurred.")
