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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import authenticate
from api.context import ApiServices, services
from api.contract import DEPRECATION_HEADERS, IDEMPOTENCY_KEY, RATE_LIMIT_HEADERS, Header, endpoint
from api.errors import ApiError, error_body
from api.jobs import idempotency_key, visible_to
from api.model_uri import catalogue_model_id, is_model_uri
from api.schemas import MODEL_ID_SCHEMA, JobCreate, MessageIn, ResultOut, UsageOut
from api.service import deprecation_headers
from jobs.answered import Answered
from jobs.events import Event, job_events, stream_error
from jobs.service import load_job, read_end, submit_and_wait, wait_for_job
from jobs.spec import Metadata, NamedToolChoice, ResponseFormatIn, ToolCallIn, ToolIn
from jobs.status import ACTIVE, ANSWERED
from jobs.submit import Submitted
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
    """An OpenAI message: text (or text parts); an assistant's `tool_calls` (content may then
    be null); a `tool` message answering one call by `tool_call_id`."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=128)

    @field_validator("content")
    @classmethod
    def text_only(
        cls, value: str | list[dict[str, Any]] | None
    ) -> str | list[dict[str, Any]] | None:
        if isinstance(value, list) and any(part.get("type") != "text" for part in value):
            raise ValueError("only text content parts are supported")
        return value

    def as_message(self) -> MessageIn:
        text = self.content or ""
        if isinstance(text, list):
            text = "".join(str(part.get("text", "")) for part in text)
        role = "system" if self.role == "developer" else self.role
        return MessageIn(
            role=role,
            content=text,
            tool_calls=self.tool_calls or None,
            tool_call_id=self.tool_call_id,
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


# OpenAI parameters no provider can honour: refused when set to anything but their neutral
# value (an answer that ignored them would look like one that honoured them). Others that do
# not change the answer (`user`, `seed`, `store`, `service_tier`, ...) are accepted and ignored.
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "functions": (None, []),  # the legacy form of `tools`
    "function_call": (None,),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "audio": (None,),
    "modalities": (None, ["text"]),
    "prediction": (None,),
    "web_search_options": (None,),
}


class ChatCompletionRequest(BaseModel):
    """The OpenAI request. Parameters llmgw does not use are accepted and ignored, except
    those that would change the answer (`UNSUPPORTED`, `stop`, and tools or response formats
    the model cannot serve): 400 `unsupported_parameter`."""

    model_config = ConfigDict(extra="allow")

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
    tools: list[ToolIn] = Field(default_factory=list, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    stop: str | list[str] | None = Field(
        default=None, description="refused (400 `unsupported_parameter`): no provider has it"
    )

    def refuse_unsupported(self) -> None:
        for name, value in (self.model_extra or {}).items():
            if name in UNSUPPORTED and value not in UNSUPPORTED[name]:
                hint = " (use `tools`)" if name.startswith("function") else ""
                raise ApiError(
                    400,
                    "unsupported_parameter",
                    f"`{name}` is not supported by {self.model!r} "
                    f"(neither YandexGPT nor GigaChat has it){hint}.",
                    param=name,
                    model=self.model,
                )

    def as_job(self) -> JobCreate:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return JobCreate(
            model=catalogue_model_id(self.model),
            messages=[m.as_message() for m in self.messages],
            temperature=self.temperature,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            top_p=self.top_p,
            metadata=self.metadata,
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format,
            stop=stop,
        )


class FunctionOut(BaseModel):
    name: str
    arguments: str = Field(description="a JSON object serialized to a string")


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"]
    function: FunctionOut


class AnswerOut(BaseModel):
    role: Literal["assistant"]
    content: str | None = Field(description="null when the answer is tool calls")
    tool_calls: list[ToolCallOut] | None = None


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
    chat.refuse_unsupported()
    owner = visible_to(principal)
    submit = partial(
        app.submitter.submit,
        principal.id,
        chat.as_job(),
        stream=chat.stream,
        idempotency_key=idempotency_key(),
    )
    if chat.stream:
        submitted = submit()
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return stream_response(
            app,
            owner,
            submitted.job_id,
            include_usage=include_usage,
            yandex_wire=is_model_uri(chat.model),
        )
    submitted, answered = answer_sync(app, submit, owner)
    if answered is None:
        answered = read_answer(app, submitted.job_id, owner)
    return completion_body(answered), 200, answer_headers(answered)


def answer_sync(
    app: ApiServices, submit: Callable[..., Submitted], owner: str | None
) -> tuple[Submitted, Answered | None]:
    """Submit a non-streamed sync request's job (`submit(**options)`) and return once it has
    ended or `LLMGW_SYNC_TIMEOUT_SECONDS` ran out. With `LLMGW_SYNC_INLINE` this thread runs
    it (`workers.inline`, through the root) instead of publishing it — inserted already
    claimed when its call may go now (`open_first`) — and waits only for what that run
    handed to the queue; otherwise it is registered for its end, then published. Second:
    the answer, when this thread's run ended the job with one (`jobs.answered`); None: read
    the job back."""
    timeout = app.api_config.sync_timeout_seconds
    if not app.api_config.sync_inline:
        submitted, _ = submit_and_wait(
            app.sessions, app.done_listener, lambda job_id: submit(job_id=job_id), owner, timeout
        )
        return submitted, None
    submitted = submit(dispatch=False, opener=app.open_first)
    ran = app.run_here(submitted) if submitted.created else None
    if ran is None or not ran.ended:
        wait_for_job(app.sessions, app.done_listener, submitted.job_id, owner, timeout)
    return submitted, ran.answered if ran is not None else None


def read_answer(app: ApiServices, job_id: str, owner: str | None) -> Answered:
    """The answer of a job read back with its attempts; the error it ended with (or 504 if
    it is still running) raised as the API's error."""
    with app.sessions() as session:
        job = load_job(session, job_id, owner, attempts=True)
        if job.status not in ANSWERED:  # incomplete: finish_reason length
            raise_for_job(job, llmgw_headers(job))
        return Answered.of_job(job)


def answer_headers(answered: Answered) -> dict[str, str]:
    """The `x-llmgw-*` and deprecation headers of an answered job."""
    return {
        "x-llmgw-job-id": answered.job_id,
        "x-llmgw-provider": answered.provider,
        "x-llmgw-model": f"{answered.model}:{answered.channel}",
        "x-llmgw-attempts": str(answered.calls),
        "x-llmgw-fallbacks": str(answered.fallbacks),
        **answered.deprecation_headers,
        "x-llmgw-model-version": answered.result["model_version"],
    }


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
    # The provider's Retry-After, passed on with its 429 (kept on the job by the worker).
    wait = {"Retry-After": str(job.error_retry_after)} if job.error_retry_after else {}
    raise ApiError(status, code, message, headers=wait, job_id=job.id)


def completion_body(answered: Answered) -> dict[str, Any]:
    """The `chat.completion` body of an answered job."""
    result = ResultOut.model_validate(answered.result)
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.tool_calls:
        message["content"] = result.content or None
        message["tool_calls"] = openai_tool_calls(result.model_dump()["tool_calls"])
    return {
        "id": f"chatcmpl-{answered.job_id}",
        "object": "chat.completion",
        "created": epoch_seconds(answered.created_at),
        "model": answered.model_requested,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": result.usage.model_dump(),
        "system_fingerprint": f"{answered.provider}:{result.model_version}",
        "warnings": answered.warnings,
    }


def openai_tool_calls(calls: list[dict[str, Any]], *, indexed: bool = False) -> list[dict]:
    """Stored calls ({id, name, arguments: object}) in OpenAI's form (arguments a string);
    stream deltas also carry each call's `index`."""
    return [
        ({"index": index} if indexed else {})
        | {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": json.dumps(call["arguments"], ensure_ascii=False),
            },
        }
        for index, call in enumerate(calls)
    ]


# -- stream: true -----------------------------------------------------------------------------


def stream_headers(job: Job) -> dict[str, str]:
    """The headers of a streamed answer: which job and model serve it, and no buffering."""
    return {
        "x-llmgw-job-id": job.id,
        "x-llmgw-provider": job.provider,
        "x-llmgw-model": f"{job.model}:{job.channel}",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }


def stream_response(
    app: ApiServices, owner: str | None, job_id: str, *, include_usage: bool, yandex_wire: bool
) -> Response:
    """Server-sent `chat.completion.chunk` events relayed from the job's Redis stream.
    `yandex_wire` (the model was named by a `gpt://` URI): chunks as YandexGPT's OpenAI-compatible
    surface sends them, without `finish_reason` until the finishing chunk (`ChunkMaker`)."""
    with app.sessions() as session:
        job = load_job(session, job_id, owner)
    headers = stream_headers(job)
    # Yandex's surface always ends with the usage chunk, whatever `stream_options` says.
    with_usage = include_usage or yandex_wire
    chunks = ChunkMaker(job.id, job.model_requested, created_at(job), with_usage, yandex_wire)
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
                yield sse(stream_error_event(data))
                return
    except Exception:  # Redis or the database gone mid-answer: still end as an error
        log.exception("stream of job %s broke off", chunks.job_id)
        message = "The answer's stream was lost; read the job for its result."
        yield sse(stream_error_event(stream_error(chunks.job_id, "stream_unavailable", message)))


def stream_error_event(error: dict[str, Any]) -> dict[str, Any]:
    """A stream's error event in the one error shape (`type` as its code's status would say)."""
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    status = stream_error_status(error["code"])
    return error_body(status, error["code"], error["message"], None, **details)


def stream_error_status(code: str) -> int:
    """The status a stream's error would have had before the answer started."""
    return FAILURE_STATUS.get(code, 503 if code == "stream_unavailable" else 502)


@dataclass(frozen=True)
class ChunkMaker:
    job_id: str
    model: str
    created: int
    include_usage: bool
    # YandexGPT's wire (recorded): no `finish_reason`/`logprobs`/`usage` keys until the chunks
    # that carry them, where OpenAI sends nulls; yandex-cloud-ml-sdk fails on a null
    # `finish_reason` and takes any chunk with a `usage` key for the usage chunk.
    yandex_wire: bool = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        if self.yandex_wire:
            choice = {k: v for k, v in choice.items() if v is not None}
        body: dict[str, Any] = {
            "id": f"chatcmpl-{self.job_id}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        if self.include_usage and not self.yandex_wire:
            body["usage"] = None
        return body

    def finish(self, done: dict[str, Any]) -> Iterator[str]:
        """Tool calls (whole, in one delta), the finish, the usage if asked, `[DONE]`."""
        if done.get("tool_calls"):
            calls = openai_tool_calls(done["tool_calls"], indexed=True)
            yield sse(self.chunk({"tool_calls": calls}))
        last = self.chunk({}, done["finish_reason"])
        last["system_fingerprint"] = f"{done['provider']}:{done['model_version']}"
        yield sse(last)
        if self.include_usage:
            yield sse(self.chunk({}) | {"choices": [], "usage": done["usage"]})
        yield sse("[DONE]")


def created_at(job: Job) -> int:
    return epoch_seconds(job.created_at)


def epoch_seconds(moment: datetime) -> int:
    """A stored (naive UTC) time as OpenAI's `created`: whole seconds since the epoch."""
    return int(moment.replace(tzinfo=UTC).timestamp())
