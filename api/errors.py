"""Domain errors → `{"error": {"code", "message", "type", "param", ...}}` with the right status,
in one place.

Besides llmgw's own machine slug (`code`) and sentence (`message`), every body carries OpenAI's
two conventions so that OpenAI clients classify it: `type`, derived from the status alone
(`error_type`, the one table), and `param`, the request field at fault where one is known
(`model` for a model id the catalogue refuses, the first invalid field of a body), else null.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import sqlalchemy.exc
from flask import Flask, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from jobs.admission import LimitExceeded, ModelNotAllowed
from jobs.callbacks import CallbacksUnavailable
from jobs.embeddings import UnsupportedModel
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
    UnsupportedParameter,
)

log = logging.getLogger(__name__)
# Seconds a client is asked to wait when a backing service is down (Redis restarts in ~1 s).
UNAVAILABLE_RETRY_AFTER = 5


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details = details


ROUTING_ERRORS: dict[type[RoutingError], tuple[int, str]] = {
    MalformedModelId: (400, "invalid_model_id"),
    UnknownModel: (404, "model_not_found"),
    UnknownChannel: (404, "channel_not_found"),
    UnknownVersion: (404, "version_not_found"),
    ModelSunset: (410, "model_sunset"),
    NoRouteAvailable: (503, "no_route_available"),
    ContextTooLong: (400, "context_length_exceeded"),
    UnsupportedParameter: (400, "unsupported_parameter"),
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

# The request field a domain error is about (OpenAI's `param`); others have none.
ROUTING_PARAMS: dict[type[RoutingError], str] = {
    MalformedModelId: "model",
    UnknownModel: "model",
    UnknownChannel: "model",
    UnknownVersion: "model",
    ModelSunset: "model",
    NoRouteAvailable: "model",
    ContextTooLong: "messages",
}
JOB_PARAMS: dict[type[JobError], str] = {
    ModelNotAllowed: "model",
    InvalidCursor: "cursor",
    UnsupportedModel: "model",
}

# Statuses whose code is ours rather than werkzeug's name for them.
HTTP_CODES = {404: "unknown_route", 413: "request_too_large"}

# OpenAI's error `type` by HTTP status; any other 4xx is `invalid_request_error`, 5xx
# `server_error`.
ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


def error_type(status: int) -> str:
    """OpenAI's `type` for an error answered with `status`."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, code: str, message: str, param: str | None = None, **details: Any):
    """The one error shape: llmgw's `code` and `message`, OpenAI's `type` and `param`, then
    the error's own details."""
    head = {"code": code, "message": message, "type": error_type(status), "param": param}
    return {"error": head | {k: v for k, v in details.items() if k not in head}}


def error_response(status: int, code: str, message: str, param: str | None = None, **details: Any):
    return jsonify(error_body(status, code, message, param, **details)), status


def unknown_route_message(path: str) -> str:
    return (
        f"There is no endpoint at {path}. llmgw serves POST /v1/chat/completions, "
        "/v1/embeddings, /v1/jobs, /v1/batches, /v1/tokenize and GET /v1/models "
        "(OpenAI-compatible where OpenAI has them); "
        "see /openapi.json or /docs for every endpoint."
    )


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def database_unavailable(exc: Exception) -> bool:
    """A database error that passes: locked, out of pooled connections, or unreachable."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError) or getattr(
        exc, "connection_invalidated", False
    ):
        return True
    text = str(exc).lower()
    return any(sign in text for sign in UNAVAILABLE_SIGNS)


# What the drivers say when the database is busy or cannot be reached (sqlite3, psycopg).
UNAVAILABLE_SIGNS = (
    "database is locked",
    "could not connect",
    "connection refused",
    "server closed the connection",
    "connection timeout",
    "the database system is starting up",
)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        body, status = error_response(exc.status, exc.code, exc.message, exc.param, **exc.details)
        return body, status, exc.headers

    @app.errorhandler(RoutingError)
    def _routing_error(exc: RoutingError):
        status, code = ROUTING_ERRORS.get(type(exc), (400, "invalid_model"))
        details = dict(exc.details)  # UnsupportedParameter names its own param
        param = details.pop("param", None) or ROUTING_PARAMS.get(type(exc))
        return error_response(status, code, exc.message, param, choices=exc.choices, **details)

    @app.errorhandler(JobError)
    def _job_error(exc: JobError):
        status, param = JOB_ERRORS.get(type(exc), 400), JOB_PARAMS.get(type(exc))
        return error_response(status, exc.code, exc.message, param, **exc.details)

    @app.errorhandler(LimitExceeded)
    def _limit_exceeded(exc: LimitExceeded):
        body, status = error_response(429, exc.code, exc.message, **exc.details)
        return body, status, {"Retry-After": str(exc.retry_after)}

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        problems = validation_problems(exc)
        summary = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        param = problems[0]["field"] or None if problems else None
        message = f"The request body is invalid: {summary}"
        return error_response(400, "invalid_request", message, param, problems=problems)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = HTTP_CODES.get(exc.code or 500) or (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 404:  # no route matched: name the path and say what exists
            message = unknown_route_message(request.path)
        body, status = error_response(exc.code or 500, code, message)
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

    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.TimeoutError)
    def _database_busy(exc: Exception):
        # SQLite's write lock held past the busy timeout, no free pooled connection, or the
        # database unreachable: the transaction wrote nothing, so the client may simply retry.
        # Anything else (a missing table, say) is the gateway's own fault: a 500.
        if not database_unavailable(exc):
            return _unexpected(exc)
        log.warning("database unavailable: %s", type(exc).__name__)
        body, status = error_response(
            503, "unavailable", "The gateway's database is busy or unavailable; retry shortly."
        )
        return body, status, {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "An internal error occurred.")
