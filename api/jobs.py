"""`/v1/jobs`: submit a completion job, list them, poll or long-poll one, cancel it."""

from __future__ import annotations

import logging

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, authenticate
from api.context import services
from api.contract import (
    DEPRECATION_HEADERS,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    RATE_LIMIT_HEADERS,
    Header,
    endpoint,
)
from api.errors import ApiError
from api.schemas import JobCreate, JobList, JobListQuery, JobOut
from api.service import deprecation_headers, job_view
from jobs.callbacks import accept_url
from jobs.listing import JobFilter, list_jobs
from jobs.service import cancel_job, load_job, wait_for_job

log = logging.getLogger(__name__)
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
    return min(query.wait, services().api_config.max_wait_seconds)


def visible_to(principal: Principal) -> str | None:
    """The owner whose jobs this caller sees; None for an admin (every job)."""
    return None if principal.is_admin else principal.id


def job_response(job_id: str, principal: Principal, status: int, headers: dict[str, str]):
    with services().sessions() as session:
        job = load_job(session, job_id, visible_to(principal), attempts=True)
        return job_view(job), status, {**deprecation_headers(job), **headers}


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
    if body.callback_url is not None:
        accept_url(body.callback_url, services().callbacks)
    submitted = services().submitter.submit(principal.id, body, idempotency_key=idempotency_key())
    headers = {"Location": f"/v1/jobs/{submitted.job_id}"}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    return job_response(submitted.job_id, principal, 202, headers)


@endpoint(
    bp,
    "GET",
    "",
    summary="List the caller's jobs, newest first",
    tag="jobs",
    operation_id="listJobs",
    query=JobListQuery,
    response=JobList,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(403,),
)
def list_jobs_view(query: JobListQuery):
    principal = authenticate()
    if query.key_id is not None and not principal.is_admin:
        raise ApiError(403, "forbidden", "Only an admin key may list another key's jobs.")
    owner = query.key_id if principal.is_admin else principal.id
    where = JobFilter(owner, query.status, query.model, query.batch_id)
    with services().sessions() as session:
        page = list_jobs(session, where, query.after, query.limit)
        data = [job_view(job) for job in page.items]
    return JobList(data=data, has_more=page.has_more, next_cursor=page.next_cursor)


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
    seconds = wait_seconds(query)
    if seconds > 0:
        app = services()
        wait_for_job(app.sessions, app.done_listener, job_id, visible_to(principal), seconds)
    return job_response(job_id, principal, 200, {})


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
    app = services()
    cancel_job(app.sessions, app.redis, job_id, visible_to(principal))
    body, status, headers = job_response(job_id, principal, 200, {})
    if body.callback is not None:
        kick_callbacks(job_id)
    return body, status, headers


def kick_callbacks(subject: str) -> None:
    try:
        services().kick_callbacks()
    except Exception:  # the beat schedule delivers it within seconds anyway
        log.warning("could not kick the callback delivery for %s", subject, exc_info=True)
