"""Request and response bodies of the HTTP API (pydantic; the OpenAPI document comes from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from jobs.spec import JobRequest
from jobs.spec import MessageIn as MessageIn  # re-exported: the chat request converts to it
from jobs.status import JobStatus

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


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"code", "message", ...details}}`."""

    error: ErrorOut


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
    started_at: datetime


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: JobStatus
    model: str
    route: RouteOut
    result: ResultOut | None = None
    error: ErrorOut | None = None
    attempts: list[AttemptOut] = Field(default_factory=list)
    plan: dict[str, Any] | None = Field(
        default=None, description="the fallback plan fixed at submission: candidates and skipped"
    )
    warnings: list[dict[str, str]] = Field(default_factory=list)
    fallbacks: list[dict[str, str]] = Field(
        default_factory=list, description="each switch to another candidate: from, to, reason, at"
    )
    result_expired: bool = Field(
        default=False, description="the prompt and result were erased after the retention period"
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
