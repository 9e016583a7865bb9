"""`/v1/batches`: submit many completion requests at once (OpenAI's Batch API shape), read a
batch's progress, its output and errors as JSONL, cancel it. docs/batches.md."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any, Literal

from flask import Blueprint, Response, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.chat import completion_body
from api.context import services
from api.contract import RATE_LIMIT_HEADERS, endpoint
from api.jobs import visible_to
from api.schemas import AFTER, PAGE_LIMIT, CallbackOut, UtcDatetime
from api.service import callback_view
from jobs.answered import Answered
from jobs.batch_file import MAX_LINES, ParsedFile, parse_jsonl, parse_requests
from jobs.batches import (
    CANCELLED_OUTCOME,
    BatchStatus,
    cancel_batch,
    create_batch,
    ended_lines,
    list_batches,
    load_batch,
)
from jobs.callbacks import accept_url
from jobs.spec import Metadata
from jobs.status import ANSWERED, JobStatus
from storage.models import Batch, BatchLine, Job

log = logging.getLogger(__name__)
bp = Blueprint("batches", __name__, url_prefix="/v1/batches")

JSONL = "application/jsonl"
OnInvalid = Literal["reject", "skip"]
CALLBACK = (
    "http(s) URL that receives the final batch JSON, signed, when the batch ends "
    "(docs/batches.md, Callbacks)"
)


class BatchCreate(BaseModel):
    """The JSON form; the JSONL form (`Content-Type: application/jsonl`) sends the lines as
    the body and the options in the query string."""

    model_config = ConfigDict(extra="forbid")

    requests: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_LINES,
        description='each `{"custom_id", "method": "POST", "url": "/v1/chat/completions", '
        '"body": {...}}`',
    )
    completion_window: Literal["24h"] = "24h"
    metadata: Metadata = Field(default_factory=dict)
    on_invalid: OnInvalid = Field(
        default="reject", description="`reject`: 400 naming the bad lines; `skip`: run the rest"
    )
    callback_url: str | None = Field(default=None, max_length=2048, description=CALLBACK)


class BatchCreateQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    completion_window: Literal["24h"] = "24h"
    on_invalid: OnInvalid = "reject"
    callback_url: str | None = Field(default=None, max_length=2048, description=CALLBACK)


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class InvalidLineOut(BaseModel):
    line: int
    custom_id: str | None = None
    problem: str


class BatchOut(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str = "/v1/chat/completions"
    status: BatchStatus
    completion_window: str
    request_counts: RequestCounts
    invalid_lines: list[InvalidLineOut] = Field(
        default_factory=list, description="lines skipped under `on_invalid: skip`"
    )
    output_url: str
    errors_url: str
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: UtcDatetime
    in_progress_at: UtcDatetime | None = None
    finalizing_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    failed_at: UtcDatetime | None = None
    expires_at: UtcDatetime
    expired_at: UtcDatetime | None = None
    cancelling_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None
    callback: CallbackOut | None = Field(
        default=None, description="the completion callback, when `callback_url` was given"
    )


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchOut]
    has_more: bool
    next_cursor: str | None = None


class BatchListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = AFTER
    limit: int = PAGE_LIMIT


def batch_view(batch: Batch) -> BatchOut:
    stamps = {
        name: getattr(batch, name)
        for name in BatchOut.model_fields
        if name.endswith("_at") and hasattr(batch, name)
    }
    return BatchOut(
        id=batch.id,
        status=BatchStatus(batch.status),
        completion_window=batch.completion_window,
        request_counts=RequestCounts(
            total=batch.total, completed=batch.completed, failed=batch.failed
        ),
        invalid_lines=[InvalidLineOut.model_validate(p) for p in batch.invalid_lines or []],
        output_url=f"/v1/batches/{batch.id}/output",
        errors_url=f"/v1/batches/{batch.id}/errors",
        metadata=batch.batch_metadata or {},
        callback=callback_view(batch.callback),
        **stamps,
    )


def batch_response(batch_id: str, status: int = 200):
    principal = authenticate()
    with services().sessions() as session:
        return batch_view(load_batch(session, batch_id, visible_to(principal))), status


@endpoint(
    bp,
    "POST",
    "",
    summary="Create a batch of chat completion requests",
    description="A JSON body, or a JSONL file (`Content-Type: application/jsonl`, one "
    "request a line; options in the query string). A malformed line is a 400 "
    "`invalid_batch` whose `lines` name each bad line and why, unless `on_invalid` is `skip`.",
    tag="batches",
    operation_id="createBatch",
    body=BatchCreate,
    body_also={JSONL: "one request a line, OpenAI's batch input format"},
    query=BatchCreateQuery,
    response=BatchOut,
    status=201,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(503,),
)
def create(body: BatchCreate | str, query: BatchCreateQuery):
    principal = authenticate()
    if isinstance(body, str):
        parsed: ParsedFile = parse_jsonl(body)
        window, metadata, on_invalid = query.completion_window, {}, query.on_invalid
        callback_url = query.callback_url
    else:
        parsed = parse_requests(body.requests)
        window, metadata, on_invalid = body.completion_window, body.metadata, body.on_invalid
        callback_url = body.callback_url
    app = services()
    if callback_url is not None:
        accept_url(callback_url, app.callbacks)
    batch_id = create_batch(
        app.sessions,
        principal.id,
        parsed,
        window=window,
        metadata=metadata,
        skip_invalid=on_invalid == "skip",
        callback_url=callback_url,
    )
    kick_feeder(batch_id)
    return batch_response(batch_id, 201)


def kick_feeder(batch_id: str) -> None:
    try:
        services().kick_feeder()
    except Exception:  # the beat schedule runs it within seconds anyway
        log.warning("could not kick the batch feeder for %s", batch_id, exc_info=True)


@endpoint(
    bp,
    "GET",
    "",
    summary="List the caller's batches, newest first",
    tag="batches",
    operation_id="listBatches",
    query=BatchListQuery,
    response=BatchList,
    response_headers=RATE_LIMIT_HEADERS,
)
def list_view(query: BatchListQuery):
    principal = authenticate()
    with services().sessions() as session:
        page = list_batches(session, visible_to(principal), query.after, query.limit)
        data = [batch_view(b) for b in page.items]
    return BatchList(data=data, has_more=page.has_more, next_cursor=page.next_cursor)


@endpoint(
    bp,
    "GET",
    "/<batch_id>",
    summary="Read a batch: status, request counts, timestamps",
    tag="batches",
    operation_id="getBatch",
    response=BatchOut,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(404,),
)
def get_view(batch_id: str):
    return batch_response(batch_id)


@endpoint(
    bp,
    "POST",
    "/<batch_id>/cancel",
    summary="Cancel a batch: stop feeding it and cancel its queued and running lines",
    description="The batch is `cancelling` until the feeder has seen every line end "
    "(seconds), then `cancelled`.",
    tag="batches",
    operation_id="cancelBatch",
    response=BatchOut,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(404, 409),
)
def cancel_view(batch_id: str):
    principal = authenticate()
    app = services()
    cancel_batch(app.sessions, app.redis, batch_id, visible_to(principal))
    kick_feeder(batch_id)  # it moves the batch from cancelling to cancelled
    return batch_response(batch_id)


RESULT_DESCRIPTION = (
    "JSONL, one line per ended request in line order: `custom_id`, `response` "
    "(`status_code`, `request_id`, `body`: a chat completion) or `error` (`code`, "
    "`message`), `model_version` and `attempts`. Grows while the batch runs."
)


@endpoint(
    bp,
    "GET",
    "/<batch_id>/output",
    summary="The answers of a batch's succeeded requests (JSONL)",
    description=RESULT_DESCRIPTION,
    tag="batches",
    operation_id="getBatchOutput",
    media_type=JSONL,
    errors=(404,),
)
def output_view(batch_id: str):
    return results(batch_id, tuple(ANSWERED))


@endpoint(
    bp,
    "GET",
    "/<batch_id>/errors",
    summary="The errors of a batch's failed and cancelled requests (JSONL)",
    description=RESULT_DESCRIPTION,
    tag="batches",
    operation_id="getBatchErrors",
    media_type=JSONL,
    errors=(404,),
)
def errors_view(batch_id: str):
    return results(batch_id, (JobStatus.FAILED, CANCELLED_OUTCOME))


def results(batch_id: str, outcomes: tuple[str, ...]) -> Response:
    principal = authenticate()
    sessions = services().sessions
    with sessions() as session:
        load_batch(session, batch_id, visible_to(principal))

    def lines() -> Iterator[str]:
        with sessions() as session:
            for line, job in ended_lines(session, batch_id, outcomes):
                yield json.dumps(result_line(line, job), ensure_ascii=False) + "\n"

    return Response(stream_with_context(lines()), mimetype=JSONL)


def result_line(line: BatchLine, job: Job | None) -> dict[str, Any]:
    """One line of the output or errors file, as OpenAI's batch output plus llmgw's own."""
    out: dict[str, Any] = {
        "id": f"batch_req_{job.id if job else f'{line.batch_id}_{line.line}'}",
        "custom_id": line.custom_id,
        "line": line.line,
        "response": None,
        "error": None,
        "model_version": None,
        "attempts": job.attempt_count if job else 0,
    }
    if job is not None and job.status in ANSWERED and job.result:
        out["response"] = {
            "status_code": 200,
            "request_id": job.id,
            "body": completion_body(Answered.of_job(job)),
        }
        out["model_version"] = job.result.get("model_version")
    else:
        out["error"] = line_error(line, job)
    return out


def line_error(line: BatchLine, job: Job | None) -> dict[str, str]:
    if job is None:
        code = line.error_code or line.outcome or "cancelled"
        return {"code": snake(code), "message": line.error_message or "Never submitted."}
    if job.error_code:
        return {"code": job.error_code, "message": job.error_message or ""}
    return {"code": job.status, "message": f"The request ended as {job.status}."}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
