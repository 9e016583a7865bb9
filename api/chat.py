"""`POST /v1/chat/completions`: OpenAI-compatible, synchronous or streamed.

The request becomes a job like any other; the view waits for it (Redis wake-up) and answers
in the OpenAI shape, with `x-llmgw-*` headers saying which version served it. With
`stream: true` the job carries the flag, the worker publishes the answer's deltas to the
job's Redis stream, and the view relays them as `chat.completion.chunk` server-sent events
(`stream_response` below).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from functools import partial
from typing import Annotated, Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import authenticate
from api.context import ApiServices, services
from api.contract import DEPRECATION_HEADERS, IDEMPOTENCY_KEY, RATE_LIMIT_HEADERS, Header, endpoint
from api.errors import ApiError
from api.jobs import idempotency_key, visible_to
from api.schemas import MODEL_ID_SCHEMA, JobCreate, JobOut, MessageIn, UsageOut
from api.service import deprecation_headers, job_view
from jobs.events import Event, job_events, stream_error
from jobs.service import load_job, read_end, wait_for_job
from jobs.spec import Metadata
from jobs.status import ACTIVE, ANSWERED
from storage.models import Job

log = logging.getLogger(__name__)

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
    content: Annotated[str, Field(min_length=1)] | list[dict[str, Any]]

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


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI request; parameters llmgw does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200, json_schema_extra=MODEL_ID_SCHEMA)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=128_000)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=128_000)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = Field(
        default=False, description="answer as server-sent `chat.completion.chunk` events"
    )
    stream_options: StreamOptions | None = None
    metadata: Metadata = Field(default_factory=dict)

    def as_job(self) -> JobCreate:
        return JobCreate(
            model=self.model,
            messages=[m.as_message() for m in self.messages],
            temperature=self.temperature,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            top_p=self.top_p,
            metadata=self.metadata,
        )


class AnswerOut(BaseModel):
    role: Literal["assistant"]
    content: str


class ChoiceOut(BaseModel):
    index: int
    message: AnswerOut
    finish_reason: str
    logprobs: None = None


class ChatCompletionOut(BaseModel):
    """The OpenAI `chat.completion` object, plus llmgw's `warnings` (deprecation, redirect)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    system_fingerprint: str
    warnings: list[dict[str, str]] = Field(default_factory=list)


LLMGW_HEADERS = (
    Header("x-llmgw-job-id", "The job behind the answer (`GET /v1/jobs/<id>`)", required=True),
    Header("x-llmgw-provider", "The provider that served it", required=True),
    Header("x-llmgw-model", "The model and channel that served it", required=True),
    Header("x-llmgw-model-version", "The provider's version of the model (not when streamed)"),
    Header("x-llmgw-attempts", "Provider calls made (not when streamed)"),
    Header("x-llmgw-fallbacks", "Switches to another candidate (not when streamed)"),
)


@endpoint(
    bp,
    "POST",
    "/chat/completions",
    summary="OpenAI-compatible completion, synchronous or streamed",
    description="One JSON answer, or with `stream: true` server-sent `chat.completion.chunk` "
    "events ending in `data: [DONE]`, or in an error event if cut.",
    tag="chat",
    operation_id="createChatCompletion",
    body=ChatCompletionRequest,
    response=ChatCompletionOut,
    also={"text/event-stream": "with `stream: true`: `chat.completion.chunk` events"},
    headers=(IDEMPOTENCY_KEY,),
    response_headers=(*LLMGW_HEADERS, *DEPRECATION_HEADERS, *RATE_LIMIT_HEADERS),
    errors=(404, 409, 410, 429, 502, 503, 504),
)
def chat_completions(body: ChatCompletionRequest):
    principal = authenticate()
    app = services()
    chat = body
    submitted = app.submitter.submit(
        principal.id, chat.as_job(), stream=chat.stream, idempotency_key=idempotency_key()
    )
    owner = visible_to(principal)
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return stream_response(app, owner, submitted.job_id, include_usage=include_usage)
    timeout = app.api_config.sync_timeout_seconds
    wait_for_job(app.sessions, app.redis, submitted.job_id, owner, timeout)
    with app.sessions() as session:
        job = load_job(session, submitted.job_id, owner)
        headers = llmgw_headers(job)
        if job.status not in ANSWERED:  # incomplete: finish_reason length
            raise_for_job(job, headers)
        return completion_body(job, job_view(job)), 200, headers


def llmgw_headers(job: Job) -> dict[str, str]:
    calls = sum(1 for attempt in job.attempts if attempt.outcome != "skipped")
    headers = {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "x-llmgw-attempts": str(calls),
        "x-llmgw-fallbacks": str(len(job.fallbacks or [])),
        **deprecation_headers(job),
    }
    if job.result:
        headers["x-llmgw-model-version"] = job.result["model_version"]
    return headers


def raise_for_job(job: Job, headers: dict[str, str]) -> None:
    if job.status in ACTIVE:
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


def completion_body(job: Job, view: JobOut | None = None) -> dict[str, Any]:
    """The `chat.completion` body; `view` when the caller has built it already."""
    view = view or job_view(job)
    result = view.result
    assert result is not None
    return {
        "id": f"chatcmpl-{job.id}",
        "object": "chat.completion",
        "created": created_at(job),
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
        "warnings": view.warnings,
    }


# -- stream: true -----------------------------------------------------------------------------


def stream_response(
    app: ApiServices, owner: str | None, job_id: str, *, include_usage: bool
) -> Response:
    """Server-sent `chat.completion.chunk` events relayed from the job's Redis stream."""
    with app.sessions() as session:
        job = load_job(session, job_id, owner)
    headers = {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    chunks = ChunkMaker(job.id, job.model_requested, created_at(job), include_usage)
    end = partial(read_end, app.sessions, job_id, owner)
    events = job_events(app.redis, job_id, end, app.api_config.sync_timeout_seconds)
    return Response(sse_body(chunks, events), mimetype="text/event-stream", headers=headers)


def sse(data: dict[str, Any] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


def sse_body(chunks: ChunkMaker, events: Iterator[Event]) -> Iterator[str]:
    """Role chunk, content chunks, then the finish (and `[DONE]`) or an error without it."""
    yield sse(chunks.chunk({"role": "assistant", "content": ""}))
    try:
        for event, data in events:
            if event == "delta":
                yield sse(chunks.chunk({"content": data["content"]}))
            elif event == "done":
                yield from chunks.finish(data)
                return
            else:
                yield sse({"error": data})
                return
    except Exception:  # Redis or the database gone mid-answer: still end as an error
        log.exception("stream of job %s broke off", chunks.job_id)
        message = "The answer's stream was lost; read the job for its result."
        yield sse({"error": stream_error(chunks.job_id, "stream_unavailable", message)})


@dataclass(frozen=True)
class ChunkMaker:
    job_id: str
    model: str
    created: int
    include_usage: bool

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{self.job_id}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if self.include_usage:
            body["usage"] = None
        return body

    def finish(self, done: dict[str, Any]) -> Iterator[str]:
        last = self.chunk({}, done["finish_reason"])
        last["system_fingerprint"] = f"{done['provider']}:{done['model_version']}"
        yield sse(last)
        if self.include_usage:
            yield sse(self.chunk({}) | {"choices": [], "usage": done["usage"]})
        yield sse("[DONE]")


def created_at(job: Job) -> int:
    return int(job.created_at.replace(tzinfo=UTC).timestamp())
