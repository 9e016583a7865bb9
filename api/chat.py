"""`POST /v1/chat/completions`: OpenAI-compatible and synchronous.

The request becomes a job like any other; the view waits for it (Redis wake-up) and answers
in the OpenAI shape, with `x-llmgw-*` headers saying which version served it.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import authenticate
from api.errors import ApiError
from api.jobs import idempotency_key, json_body
from api.schemas import JobCreate, MessageIn
from api.service import job_view, load_job, submit_job, wait_for_job
from storage.models import Job

bp = Blueprint("chat", __name__, url_prefix="/v1")

# A failed job's reason → the HTTP status an OpenAI client expects for it.
FAILURE_STATUS = {
    "rate_limited": 429,
    "timeout": 504,
    "bad_request": 400,
    "context_too_long": 400,
    "content_filtered": 400,
    "model_not_found": 404,
}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[dict[str, Any]]

    @field_validator("content")
    @classmethod
    def text_only(cls, value: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if isinstance(value, list) and any(part.get("type") != "text" for part in value):
            raise ValueError("only text content parts are supported")
        return value

    def as_message(self) -> MessageIn:
        text = self.content
        if isinstance(text, list):
            text = "".join(str(part.get("text", "")) for part in text)
        role = "system" if self.role == "developer" else self.role
        return MessageIn(role=role, content=text)


class ChatCompletionRequest(BaseModel):
    """The OpenAI request; parameters llmgw does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=128_000)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=128_000)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=1)
    stream: Literal[False] = False
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)

    def as_job(self) -> JobCreate:
        return JobCreate(
            model=self.model,
            messages=[m.as_message() for m in self.messages],
            temperature=self.temperature,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            top_p=self.top_p,
            metadata=self.metadata,
        )


@bp.post("/chat/completions")
def chat_completions():
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    body = ChatCompletionRequest.model_validate(json_body()).as_job()
    job, _ = submit_job(runtime, principal, body, idempotency_key=idempotency_key())
    job = wait_for_job(runtime, principal, job.id, runtime.settings.sync_timeout_seconds)
    with runtime.sessions() as session:
        job = load_job(session, principal, job.id)
        headers = llmgw_headers(job)
        if job.status not in ("succeeded", "incomplete"):  # incomplete: finish_reason length
            raise_for_job(job, headers)
        return completion_body(job), 200, headers


def llmgw_headers(job: Job) -> dict[str, str]:
    headers = {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "x-llmgw-attempts": str(len(job.attempts)),
    }
    if job.result:
        headers["x-llmgw-model-version"] = job.result["model_version"]
    return headers


def raise_for_job(job: Job, headers: dict[str, str]) -> None:
    if job.status in ("queued", "running"):
        raise ApiError(
            504,
            "job_timeout",
            "The completion did not finish in time; poll the job for its result.",
            job_id=job.id,
            location=f"/v1/jobs/{job.id}",
        )
    code = job.error_code or job.status
    status = FAILURE_STATUS.get(code, 502)
    message = job.error_message or f"The job ended as {job.status}."
    raise ApiError(status, code, message, job_id=job.id, type="llmgw_error")


def completion_body(job: Job) -> dict[str, Any]:
    result = job_view(job).result
    assert result is not None
    return {
        "id": f"chatcmpl-{job.id}",
        "object": "chat.completion",
        "created": int(job.created_at.replace(tzinfo=UTC).timestamp()),
        "model": job.model_requested,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.content},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": result.usage.model_dump(),
        "system_fingerprint": f"{job.provider}:{result.model_version}",
    }
