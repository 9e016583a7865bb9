"""`/v1/jobs`: submit a completion job, poll or long-poll it, cancel it."""

from __future__ import annotations

from flask import Blueprint, request

from api.auth import Principal, authenticate
from api.context import services
from api.errors import ApiError
from api.schemas import JobCreate
from api.service import deprecation_headers, job_view
from jobs.service import cancel_job, load_job, wait_for_job

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


def json_body() -> object:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    return body


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= 255 and key.isprintable()):
        raise ApiError(
            400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 printable characters."
        )
    return key


def wait_seconds() -> float:
    raw = request.args.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    limit = services().api_config.max_wait_seconds
    if not 0 <= seconds <= limit:
        raise ApiError(
            400, "invalid_wait", f"wait must be a number of seconds between 0 and {limit:g}."
        )
    return seconds


def visible_to(principal: Principal) -> str | None:
    """The owner whose jobs this caller sees; None for an admin (every job)."""
    return None if principal.is_admin else principal.id


def job_response(job_id: str, principal: Principal, status: int, headers: dict[str, str]):
    with services().sessions() as session:
        job = load_job(session, job_id, visible_to(principal))
        headers = {**deprecation_headers(job), **headers}
        return job_view(job).model_dump(mode="json"), status, headers


@bp.post("")
def create_job():
    principal = authenticate()
    body = JobCreate.model_validate(json_body())
    submitted = services().submitter.submit(principal.id, body, idempotency_key=idempotency_key())
    headers = {"Location": f"/v1/jobs/{submitted.job_id}"}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    return job_response(submitted.job_id, principal, 202, headers)


@bp.get("/<job_id>")
def get_job(job_id: str):
    principal = authenticate()
    seconds = wait_seconds()
    if seconds > 0:
        app = services()
        wait_for_job(app.sessions, app.redis, job_id, visible_to(principal), seconds)
    return job_response(job_id, principal, 200, {})


@bp.delete("/<job_id>")
def delete_job(job_id: str):
    principal = authenticate()
    app = services()
    cancel_job(app.sessions, app.redis, job_id, visible_to(principal))
    return job_response(job_id, principal, 200, {})
