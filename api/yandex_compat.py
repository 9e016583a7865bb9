"""YandexGPT's native REST wire on llmgw: `POST /foundationModels/v1/completion`.

For code written against `llm.api.cloud.yandex.net` with `requests`/curl: point its base URL
at llmgw and send an llmgw key (`Authorization: Api-Key <key>` or `Bearer <key>`). The body is
YandexGPT's (`modelUri`, `completionOptions`, `messages[].text`); `modelUri` is mapped onto the
catalogue by `api.model_uri` (any folder; the branch is the channel; an llmgw id such as
`yandexgpt-lite:rc` is taken too). The request becomes an llmgw job like any other — routing,
fallbacks, limits and the job record are the same as for `/v1/chat/completions`.

What was chosen, and what not:
- The answer is YandexGPT's: `{"result": {alternatives, usage, modelVersion}}` with int64
  counts as strings; with `completionOptions.stream: true`, one JSON object per line, each the
  whole text so far (`ALTERNATIVE_STATUS_PARTIAL`), the last one final with `usage` — partial
  lines carry no running `usage`, which llmgw does not know before the end.
- Errors keep llmgw's body (`code`, `message`, `type`, `param`, ...) and add the fields of
  Yandex's grpc-gateway envelope (`grpcCode`, `httpCode`, `httpStatus`, `details`), so a client
  of either reads its own fields. A failure after a stream started is a last line
  `{"error": {...}}`.
- YandexGPT's tools and structured output (`tools`, `toolChoice`, `jsonObject`, `jsonSchema`,
  `toolCallList`/`toolResultList` messages) are not carried on this wire — llmgw maps them on
  `/v1/chat/completions` — and are a 400 `unsupported_parameter` naming the field and the
  model, as anything a model cannot serve is; other unknown fields a 400 `invalid_request`.
  Nothing is dropped silently.
- `yandex-cloud-ml-sdk`'s `sdk.models.completions(...)` speaks gRPC
  (`TextGenerationServiceStub.Completion` in `yandex_ai_studio_sdk/_models/completions/model.py`),
  which llmgw does not serve; its `sdk.chat.completions(...)` is HTTP and is served by
  `/v1/chat/completions` (see docs/api.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any, Literal

from flask import Blueprint, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from werkzeug.http import HTTP_STATUS_CODES

from api.auth import authenticate
from api.chat import (
    LLMGW_HEADERS,
    answer_sync,
    llmgw_headers,
    raise_for_job,
    stream_error_event,
    stream_error_status,
    stream_headers,
)
from api.context import ApiServices, services
from api.contract import DEPRECATION_HEADERS, IDEMPOTENCY_KEY, endpoint
from api.errors import ApiError
from api.jobs import idempotency_key, visible_to
from api.model_uri import catalogue_model_id
from api.schemas import JobCreate, MessageIn
from jobs.events import Event, job_events, stream_error
from jobs.service import load_job, read_end
from jobs.status import ANSWERED
from storage.models import Job

log = logging.getLogger(__name__)

bp = Blueprint("yandex_compat", __name__, url_prefix="/foundationModels/v1")

# llmgw's normalized finish reason → YandexGPT's alternative status.
STATUSES = {
    "stop": "ALTERNATIVE_STATUS_FINAL",
    "length": "ALTERNATIVE_STATUS_TRUNCATED_FINAL",
    "content_filter": "ALTERNATIVE_STATUS_CONTENT_FILTER",
    "tool_calls": "ALTERNATIVE_STATUS_TOOL_CALLS",
}
PARTIAL = "ALTERNATIVE_STATUS_PARTIAL"
# HTTP status → the gRPC code grpc-gateway pairs with it (google.rpc.Code).
GRPC_CODES = {
    400: 3,
    401: 16,
    403: 7,
    404: 5,
    409: 9,
    410: 9,
    413: 3,
    415: 3,
    429: 8,
    501: 12,
    503: 14,
    504: 4,
}


class NativeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["system", "user", "assistant"]
    text: str = Field(min_length=1, max_length=1_000_000)


MAX_TOKENS = 128_000
# YandexGPT's REST JSON writes int64 as a string ("1000"); clients send numbers too.
MaxTokens = (
    Annotated[int, Field(gt=0, le=MAX_TOKENS)]
    | Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}$")]
)


class CompletionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    maxTokens: MaxTokens | None = Field(
        default=None, description=f"1 to {MAX_TOKENS}, a JSON string or number as in YandexGPT"
    )
    reasoningOptions: dict[str, Any] | None = Field(
        default=None, description="accepted; only `mode: DISABLED` (the default) is served"
    )

    @field_validator("maxTokens")
    @classmethod
    def int64_as_string(cls, value: int | str | None) -> int | None:
        if isinstance(value, str):
            value = int(value)
            if not 0 < value <= MAX_TOKENS:
                raise ValueError(f"must be from 1 to {MAX_TOKENS}")
        return value

    @field_validator("reasoningOptions")
    @classmethod
    def no_reasoning(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value and value.get("mode") not in (None, "DISABLED", "REASONING_MODE_UNSPECIFIED"):
            raise ValueError("llmgw does not serve reasoning modes; send mode DISABLED")
        return value


# YandexGPT's request fields for tools and structured output, which this wire does not carry
# (`/v1/chat/completions` does): a 400 `unsupported_parameter` whatever their value, as any
# field outside the body's schema is a 400.
NOT_CARRIED = ("tools", "toolChoice", "parallelToolCalls", "jsonObject", "jsonSchema")
MESSAGE_NOT_CARRIED = ("toolCallList", "toolResultList")


def not_carried(field: str, model_uri: Any) -> ApiError:
    model = model_uri if isinstance(model_uri, str) else None
    return ApiError(
        400,
        "unsupported_parameter",
        f"`{field}` is not supported by llmgw's native YandexGPT completion"
        f"{f' ({model})' if model else ''}: send tools and response formats in OpenAI's "
        "shape to /v1/chat/completions, which maps them onto YandexGPT's.",
        param=field,
        model=model,
    )


class NativeCompletionRequest(BaseModel):
    """YandexGPT's completion body; fields llmgw does not carry here are refused by name."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def refuse_tools_and_formats(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        uri = data.get("modelUri")
        for name in NOT_CARRIED:
            if name in data:
                raise not_carried(name, uri)
        messages = data.get("messages")
        for i, message in enumerate(messages if isinstance(messages, list) else []):
            for name in MESSAGE_NOT_CARRIED:
                if isinstance(message, dict) and name in message:
                    raise not_carried(f"messages.{i}.{name}", uri)
        return data

    modelUri: str = Field(
        min_length=1,
        max_length=300,
        examples=["gpt://b1gfolder/yandexgpt-lite/latest"],
        description="`gpt://<any-folder>/<model>/<branch>` (branch = channel), or an llmgw id",
    )
    completionOptions: CompletionOptions = Field(default_factory=CompletionOptions)
    messages: list[NativeMessage] = Field(min_length=1, max_length=1000)

    def as_job(self) -> JobCreate:
        options = self.completionOptions
        return JobCreate(
            model=catalogue_model_id(self.modelUri),
            messages=[MessageIn(role=m.role, content=m.text) for m in self.messages],
            temperature=options.temperature,
            max_tokens=int(options.maxTokens) if options.maxTokens is not None else None,
        )


class NativeMessageOut(BaseModel):
    role: Literal["assistant"]
    text: str


class AlternativeOut(BaseModel):
    message: NativeMessageOut
    status: str


class NativeUsageOut(BaseModel):
    inputTextTokens: str
    completionTokens: str
    totalTokens: str


class NativeResultOut(BaseModel):
    alternatives: list[AlternativeOut]
    usage: NativeUsageOut
    modelVersion: str


class NativeCompletionOut(BaseModel):
    """YandexGPT's completion answer, wrapped in `result` as its REST gateway sends it."""

    result: NativeResultOut


@endpoint(
    bp,
    "POST",
    "/completion",
    summary="YandexGPT's native completion (REST), served from llmgw's catalogue",
    description="The body and answer of `llm.api.cloud.yandex.net/foundationModels/v1/completion`"
    "; with `completionOptions.stream: true`, one JSON object per line, each with the whole "
    "text so far. Errors add YandexGPT's `grpcCode`, `httpCode`, `httpStatus` and `details` "
    "to llmgw's error body.",
    tag="yandexgpt",
    operation_id="yandexCompletion",
    body=NativeCompletionRequest,
    response=NativeCompletionOut,
    also={"application/x-ndjson": "with `completionOptions.stream: true`: one result per line"},
    headers=(IDEMPOTENCY_KEY,),
    response_headers=(*LLMGW_HEADERS, *DEPRECATION_HEADERS),
    errors=(404, 409, 410, 429, 502, 503, 504),
)
def completion(body: NativeCompletionRequest):
    principal = authenticate()
    app = services()
    stream = body.completionOptions.stream
    owner = visible_to(principal)
    submit = partial(
        app.submitter.submit,
        principal.id,
        body.as_job(),
        stream=stream,
        idempotency_key=idempotency_key(),
    )
    if stream:
        return stream_lines(app, owner, submit().job_id)
    submitted, _ = answer_sync(app, submit, owner)  # the native body is read back
    with app.sessions() as session:
        job = load_job(session, submitted.job_id, owner, attempts=True)
        headers = llmgw_headers(job)
        if job.status not in ANSWERED:
            raise_for_job(job, headers)
        return native_body(job), 200, headers


def native_body(job: Job) -> dict[str, Any]:
    result = job.result
    assert result is not None
    return result_line(
        result["content"], result["finish_reason"], result["usage"], result["model_version"]
    )


def result_line(
    text: str, finish_reason: str, usage: dict[str, int], version: str
) -> dict[str, Any]:
    status = STATUSES.get(finish_reason, "ALTERNATIVE_STATUS_FINAL")
    return {
        "result": {
            "alternatives": [{"message": {"role": "assistant", "text": text}, "status": status}],
            "usage": {
                "inputTextTokens": str(usage["prompt_tokens"]),
                "completionTokens": str(usage["completion_tokens"]),
                "totalTokens": str(usage["total_tokens"]),
            },
            "modelVersion": version,
        }
    }


def stream_lines(app: ApiServices, owner: str | None, job_id: str) -> Response:
    with app.sessions() as session:
        headers = stream_headers(load_job(session, job_id, owner))
    end = partial(read_end, app.sessions, job_id, owner)
    events = job_events(app.redis, job_id, end, app.api_config.sync_timeout_seconds)
    return Response(ndjson_body(job_id, events), mimetype="application/x-ndjson", headers=headers)


def ndjson_body(job_id: str, events: Iterator[Event]) -> Iterator[str]:
    """Cumulative PARTIAL lines, then the final line (with usage), or an error line."""
    text = ""
    try:
        for event, data in events:
            if event == "delta":
                text += data["content"]
                yield line(partial_line(text))
            elif event == "done":
                usage, version = data["usage"], data["model_version"]
                yield line(result_line(text, data["finish_reason"], usage, version))
                return
            else:
                yield error_line(data)
                return
    except Exception:  # Redis or the database gone mid-answer: still end as an error
        log.exception("stream of job %s broke off", job_id)
        message = "The answer's stream was lost; read the job for its result."
        yield error_line(stream_error(job_id, "stream_unavailable", message))


def partial_line(text: str) -> dict[str, Any]:
    alternative = {"message": {"role": "assistant", "text": text}, "status": PARTIAL}
    return {"result": {"alternatives": [alternative]}}


def line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False) + "\n"


def error_line(error: dict[str, Any]) -> str:
    """A stream's last line when the job failed after the answer started."""
    status = stream_error_status(error["code"])
    return line({"error": native_error(status, stream_error_event(error)["error"])})


def native_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    """llmgw's error fields plus YandexGPT's grpc-gateway envelope fields."""
    return error | {
        "grpcCode": GRPC_CODES.get(status, 13 if status >= 500 else 2),
        "httpCode": status,
        "httpStatus": HTTP_STATUS_CODES.get(status, "Unknown"),
        "details": [],
    }


@bp.after_request
def native_error_envelope(response: Response) -> Response:
    """Errors of this blueprint (from the app's one error handler) gain the native fields."""
    if response.status_code < 400 or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body["error"] = native_error(response.status_code, body["error"])
        response.set_data(json.dumps(body, ensure_ascii=False))
    return response
