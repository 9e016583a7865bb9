"""`/v1/jobs`: submit a completion job, poll or long-poll it, cancel it."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.contract import (
    DEPRECATION_HEADERS,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    RATE_LIMIT_HEADERS,
    Header,
    endpoint,
)
from api.errors import ApiError
from api.schemas import JobCreate, JobOut
from api.service import cancel_job, job_view, load_job, submit_job, wait_for_job

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")

LOCATION = Header("Location", "The job's URL, `/v1/jobs/<id>`", required=True)


class JobWaitQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: float = Field(
        default=0,
        ge=0,
        allow_inf_nan=False,
        description="Long-poll: seconds to wait for the job to end (up to the server's bound, "
        "`LLMGW_MAX_WAIT_SECONDS`).",
    )


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 255 and key.isprintable()):
        raise ApiError(
            400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable characters."
        )
    return key


def wait_seconds(query: JobWaitQuery) -> float:
    """A longer wait than the server's bound is cut to the bound (as `Prefer: wait` is)."""
    return min(query.wait, current_app.extensions["llmgw"].settings.max_wait_seconds)


@endpoint(
    bp,
    "POST",
    "",
    summary="Submit a completion job",
    tag="jobs",
    operation_id="createJob",
    body=JobCreate,
    response=JobOut,
    status=202,
    headers=(IDEMPOTENCY_KEY,),
    response_headers=(LOCATION, IDEMPOTENT_REPLAYED, *DEPRECATION_HEADERS, *RATE_LIMIT_HEADERS),
    errors=(404, 409, 410, 429, 503),
)
def create_job(body: JobCreate):
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    job, created = submit_job(runtime, principal, body, idempotency_key=idempotency_key())
    headers = {"Location": f"/v1/jobs/{job.id}", **job.request.get("deprecation_headers", {})}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    with runtime.sessions() as session:
        view = job_view(load_job(session, principal, job.id))
    return view, 202, headers


@endpoint(
    bp,
    "GET",
    "/<job_id>",
    summary="Read (or long-poll) a job",
    tag="jobs",
    operation_id="getJob",
    query=JobWaitQuery,
    response=JobOut,
    response_headers=(*DEPRECATION_HEADERS, *RATE_LIMIT_HEADERS),
    errors=(404,),
)
def get_job(job_id: str, query: JobWaitQuery):
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    seconds = wait_seconds(query)
    if seconds > 0:
        wait_for_job(runtime, principal, job_id, seconds)
    with runtime.sessions() as session:
        job = load_job(session, principal, job_id)
        headers = job.request.get("deprecation_headers", {})
        return job_view(job), 200, headers


@endpoint(
    bp,
    "DELETE",
    "/<job_id>",
    summary="Cancel a queued or running job",
    tag="jobs",
    operation_id="cancelJob",
    response=JobOut,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(404, 409),
)
def delete_job(job_id: str):
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    cancel_job(runtime, principal, job_id)
    with runtime.sessions() as session:
        return job_view(load_job(session, principal, job_id))
