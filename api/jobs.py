"""`/v1/jobs`: submit a completion job, poll or long-poll it, cancel it."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from api.auth import authenticate
from api.errors import ApiError
from api.schemas import JobCreate
from api.service import cancel_job, job_view, load_job, submit_job, wait_for_job

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
    limit = current_app.extensions["llmgw"].settings.max_wait_seconds
    if not 0 <= seconds <= limit:
        raise ApiError(
            400, "invalid_wait", f"wait must be a number of seconds between 0 and {limit:g}."
        )
    return seconds


@bp.post("")
def create_job():
    principal = authenticate()
    body = JobCreate.model_validate(json_body())
    runtime = current_app.extensions["llmgw"]
    job, created = submit_job(runtime, principal, body, idempotency_key=idempotency_key())
    headers = {"Location": f"/v1/jobs/{job.id}", **job.request.get("deprecation_headers", {})}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    with runtime.sessions() as session:
        view = job_view(load_job(session, principal, job.id))
    return view.model_dump(mode="json"), 202, headers


@bp.get("/<job_id>")
def get_job(job_id: str):
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    seconds = wait_seconds()
    if seconds > 0:
        wait_for_job(runtime, principal, job_id, seconds)
    with runtime.sessions() as session:
        job = load_job(session, principal, job_id)
        headers = job.request.get("deprecation_headers", {})
        return job_view(job).model_dump(mode="json"), 200, headers


@bp.delete("/<job_id>")
def delete_job(job_id: str):
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    cancel_job(runtime, principal, job_id)
    with runtime.sessions() as session:
        return job_view(load_job(session, principal, job_id)).model_dump(mode="json")
