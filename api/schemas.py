"""Request and response bodies of the HTTP API (pydantic; the OpenAPI document comes from these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from jobs.spec import MODEL_ID_SCHEMA as MODEL_ID_SCHEMA  # re-exported for other bodies
from jobs.spec import JobRequest
from jobs.spec import MessageIn as MessageIn  # re-exported: the chat request converts to it
from jobs.status import JobStatus


def _as_utc(value: datetime) -> datetime:
    """The database keeps naive UTC; a response always says so (`...Z`)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """A client's timestamp as the database keeps it (naive UTC; naive input is taken as UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def iso_only(value: object) -> object:
    """A client's timestamp is an RFC 3339 string, never a number read as epoch seconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError("must be an RFC 3339 date-time string, not a number")


IsoDatetime = Annotated[datetime, BeforeValidator(iso_only)]
"""A timestamp a client sends (body or query)."""

UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""Every timestamp of a response: serialized with its UTC offset, e.g. `2026-12-03T09:30:00Z`."""


# The body of `POST /v1/jobs` is the job's own request type.
JobCreate = JobRequest


class RouteOut(BaseModel):
    provider: str
    model: str
    channel: str
    upstream_id: str
    queue: str


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResultToolCallOut(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(description="a JSON object (OpenAI's string form on chat)")


class ResultOut(BaseModel):
    content: str
    finish_reason: str = Field(description="stop, length, content_filter or tool_calls")
    usage: UsageOut
    provider: str
    model: str
    channel: str
    model_version: str
    tool_calls: list[ResultToolCallOut] = Field(
        default_factory=list, description="the calls the model made (finish_reason tool_calls)"
    )


class ErrorOut(BaseModel):
    code: str
    message: str


class ErrorDetail(ErrorOut):
    """An error's code and message, OpenAI's `type` and `param`, plus details that depend on
    the code (`problems`, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="OpenAI's error type, from the status: `invalid_request_error`, "
        "`authentication_error`, `permission_error`, `not_found_error`, `rate_limit_error`, "
        "`server_error`, `service_unavailable_error`"
    )
    param: str | None = Field(
        description="the request field at fault (`model`, `messages`, `temperature`, ...) "
        "where one is known, else null"
    )
    problems: list[dict[str, str]] | None = Field(
        default=None, description="each invalid field of the body or query: field, problem"
    )


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"code", "message", "type", "param", ...details}}`."""

    error: ErrorDetail


class Out(BaseModel):
    """A response body built as a dict by its view: fields not declared here pass through."""

    model_config = ConfigDict(extra="allow")


class ListOf(Out):
    object: Literal["list"] = "list"


class AttemptOut(BaseModel):
    number: int
    provider: str
    model: str
    channel: str
    outcome: str
    error_reason: str | None
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    started_at: UtcDatetime


class PlannedRouteOut(Out):
    """A route of a fallback plan (`routing.service.Route`)."""

    provider: str
    model: str
    channel: str
    upstream_id: str
    queue: str
    deprecated_at: UtcDatetime | None = None
    sunset_at: UtcDatetime | None = None


class CandidateOut(Out):
    reason: str
    detail: str
    route: PlannedRouteOut


class JobPlanOut(Out):
    """The fallback plan fixed at submission: candidates in order, and the skipped."""

    candidates: list[CandidateOut] = Field(default_factory=list)
    skipped: list[CandidateOut] = Field(default_factory=list)


class CallbackOut(BaseModel):
    """A job's or batch's completion callback and how its delivery went."""

    url: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="`pending` until delivered (or while retrying), `failed` once the retry "
        "window ran out"
    )
    attempts: int
    last_status_code: int | None = Field(
        default=None, description="the receiver's HTTP status on the last attempt"
    )
    last_error: str | None = None
    next_attempt_at: UtcDatetime | None = Field(
        default=None, description="while retrying: when the next attempt is due"
    )
    delivered_at: UtcDatetime | None = None


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: JobStatus
    model: str
    route: RouteOut
    result: ResultOut | None = None
    error: ErrorOut | None = None
    attempts: list[AttemptOut] = Field(default_factory=list)
    plan: JobPlanOut | None = Field(
        default=None, description="the fallback plan fixed at submission: candidates and skipped"
    )
    warnings: list[dict[str, str]] = Field(default_factory=list)
    fallbacks: list[dict[str, str]] = Field(
        default_factory=list, description="each switch to another candidate: from, to, reason, at"
    )
    result_expired: bool = Field(
        default=False, description="the prompt and result were erased after the retention period"
    )
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback: CallbackOut | None = Field(
        default=None, description="the completion callback, when `callback_url` was given"
    )


PAGE_LIMIT = Field(default=20, ge=1, le=100, description="rows per page (1-100)")
AFTER = Field(default=None, max_length=200, description="the `next_cursor` of the previous page")


class JobListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    model: str | None = Field(default=None, max_length=200, description="the model id asked for")
    batch_id: str | None = Field(default=None, max_length=32)
    key_id: str | None = Field(
        default=None, max_length=32, description="admins only: the jobs of this key"
    )
    after: str | None = AFTER
    limit: int = PAGE_LIMIT


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]
    has_more: bool
    next_cursor: str | None = None
