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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Annotated, Any, Literal

import redis
from flask import Blueprint, Response, current_app
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import Principal, authenticate
from api.contract import DEPRECATION_HEADERS, IDEMPOTENCY_KEY, RATE_LIMIT_HEADERS, Header, endpoint
from api.errors import ApiError
from api.jobs import idempotency_key
from api.schemas import MODEL_ID_SCHEMA, JobCreate, MessageIn, UsageOut
from api.service import job_view, load_job, submit_job, wait_for_job
from llmgw.runtime import Runtime
from storage import keys
from storage.models import TERMINAL_STATUSES, Job

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


class StreamedJobCreate(JobCreate):
    """A chat job whose answer is streamed: `stream` is kept in the job's request JSON, where
    the worker reads it (`/v1/jobs` itself does not accept it)."""

    stream: Literal[True] = True


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
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)

    def as_job(self) -> JobCreate:
        job_type = StreamedJobCreate if self.stream else JobCreate
        return job_type(
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
    runtime = current_app.extensions["llmgw"]
    chat = body
    job, _ = submit_job(runtime, principal, chat.as_job(), idempotency_key=idempotency_key())
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return stream_response(runtime, principal, job, include_usage=include_usage)
    job = wait_for_job(runtime, principal, job.id, runtime.settings.sync_timeout_seconds)
    with runtime.sessions() as session:
        job = load_job(session, principal, job.id)
        headers = llmgw_headers(job)
        if job.status not in ("succeeded", "incomplete"):  # incomplete: finish_reason length
            raise_for_job(job, headers)
        return completion_body(job), 200, headers


def llmgw_headers(job: Job) -> dict[str, str]:
    calls = sum(1 for attempt in job.attempts if attempt.outcome != "skipped")
    headers = {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "x-llmgw-attempts": str(calls),
        "x-llmgw-fallbacks": str(len(job.fallbacks or [])),
        **job.request.get("deprecation_headers", {}),
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
        "warnings": job.request.get("warnings", []),
    }


# -- stream: true -----------------------------------------------------------------------------

# XREAD blocks in slices this long (below the Redis client's socket timeout); between slices a
# quiet stream is checked against the job's row, so that a job that ended without a stream
# event (every candidate skipped, cancelled while queued, a replay whose stream expired) ends
# the response too.
STREAM_BLOCK_SECONDS = 2.0
Event = tuple[str, dict[str, Any]]


def stream_response(
    runtime: Runtime, principal: Principal, job: Job, *, include_usage: bool
) -> Response:
    """Server-sent `chat.completion.chunk` events relayed from the job's Redis stream."""
    headers = {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    chunks = ChunkMaker(job.id, job.model_requested, created_at(job), include_usage)
    events = job_events(runtime, principal, job.id, runtime.settings.sync_timeout_seconds)
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


def job_events(runtime: Runtime, principal: Principal, job_id: str, idle: float) -> Iterator[Event]:
    """The job's stream events in order, ending with `done` or `error` (with `job_id`).

    `idle` bounds the wait for each event (the first included), not the whole answer. A quiet
    stream whose job's row has ended gets one more read, then its end is taken from the row.
    """
    reader = StreamReader(runtime.redis, job_id)
    quiet_since, row = time.monotonic(), None
    while time.monotonic() - quiet_since < idle:
        batch = reader.read(STREAM_BLOCK_SECONDS)
        if batch:
            quiet_since = time.monotonic()
            yield from batch
            if reader.ended:
                return
        elif row is not None:
            yield from events_from_row(job_id, row, reader.text)
            return
        else:
            row = ended_row(runtime, principal, job_id)
    message = f"Nothing more of the answer came for {idle:g} s; poll the job for its result."
    yield "error", stream_error(job_id, "job_timeout", message)


class StreamReader:
    """Reads one job's stream from its start; keeps the text so far and whether it ended."""

    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self._redis, self._job_id = client, job_id
        self._key, self._last = keys.job_stream(job_id), "0-0"
        self.text, self.ended = "", False

    def read(self, block_seconds: float) -> list[Event]:
        """The next events, up to and including an end (`done`/`error`); [] when quiet."""
        reply: Any = self._redis.xread({self._key: self._last}, block=int(block_seconds * 1000))
        events: list[Event] = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._last = entry_id
                events.append(self._event(fields[b"event"].decode(), json.loads(fields[b"data"])))
                if self.ended:
                    return events
        return events

    def _event(self, event: str, data: dict[str, Any]) -> Event:
        if event == "delta":
            self.text += data["content"]
        else:
            self.ended = True
        return event, (data | {"job_id": self._job_id} if event == "error" else data)


def ended_row(runtime: Runtime, principal: Principal, job_id: str) -> dict[str, Any] | None:
    """The job's end as its row tells it, or None while it runs."""
    with runtime.sessions() as session:
        job = load_job(session, principal, job_id)
        if job.status not in TERMINAL_STATUSES:
            return None
        return {
            "status": job.status,
            "result": job.result,
            "code": job.error_code or job.status,
            "message": job.error_message or f"The job ended as {job.status}.",
        }


def events_from_row(job_id: str, row: dict[str, Any], sent: str) -> Iterator[Event]:
    """The rest of the answer from a finished job's row, when its stream has no end."""
    result = row["result"]
    if row["status"] not in ("succeeded", "incomplete"):
        yield "error", stream_error(job_id, row["code"], row["message"])
    elif result is None or not result["content"].startswith(sent):
        message = "The job's stream is no longer available; read the job for its result."
        yield "error", stream_error(job_id, "stream_unavailable", message)
    else:
        if result["content"] != sent:
            yield "delta", {"content": result["content"][len(sent) :]}
        yield "done", {k: v for k, v in result.items() if k != "content"}


def stream_error(job_id: str, code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "job_id": job_id}


def created_at(job: Job) -> int:
    return int(job.created_at.replace(tzinfo=UTC).timestamp())
