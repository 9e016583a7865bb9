"""Request and response bodies of the HTTP API (pydantic; the OpenAPI document comes from these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict


def _as_utc(value: datetime) -> datetime:
    """The database keeps naive UTC; a response always says so (`...Z`)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""Every timestamp of a response: serialized with its UTC offset, e.g. `2026-12-03T09:30:00Z`."""

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "incomplete"]


MODEL_ID_SCHEMA: JsonDict = {
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$"
}
"""The model-id grammar of `routing/model_id.py`, for the document (the router enforces it)."""


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=1_000_000)


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(
        min_length=1,
        max_length=200,
        examples=["yandexgpt-lite:latest"],
        json_schema_extra=MODEL_ID_SCHEMA,
    )
    messages: list[MessageIn] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=128_000)
    top_p: float | None = Field(default=None, gt=0, le=1)
    repetition_penalty: float | None = Field(
        default=None, gt=0, le=10, description="GigaChat only; YandexGPT ignores it"
    )
    priority: Literal["interactive", "batch"] = "interactive"
    fallback: list[Annotated[str, Field(json_schema_extra=MODEL_ID_SCHEMA)]] = Field(
        default_factory=list, max_length=5, description="model ids to try after the version chain"
    )
    cross_provider: bool = Field(
        default=False, description="allow the equivalent model of the other provider as a fallback"
    )
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


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


class ResultOut(BaseModel):
    content: str
    finish_reason: str
    usage: UsageOut
    provider: str
    model: str
    channel: str
    model_version: str


class ErrorOut(BaseModel):
    code: str
    message: str


class ErrorDetail(ErrorOut):
    """An error's code and message, plus details that depend on the code (`problems`, ...)."""

    model_config = ConfigDict(extra="allow")

    problems: list[dict[str, str]] | None = Field(
        default=None, description="each invalid field of the body or query: field, problem"
    )


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"code", "message", ...details}}`."""

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
