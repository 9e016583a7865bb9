"""`/v1/jobs`: submit a completion job and poll it."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from api.auth import authenticate
from api.errors import ApiError
from api.schemas import JobCreate
from api.service import job_view, load_job, submit_job

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


def _json_body() -> object:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    return body


@bp.post("")
def create_job():
    principal = authenticate()
    body = JobCreate.model_validate(_json_body())
    job = submit_job(current_app.extensions["llmgw"], principal, body)
    payload = job_view(job).model_dump(mode="json")
    return payload, 202, {"Location": f"/v1/jobs/{job.id}"}


@bp.get("/<job_id>")
def get_job(job_id: str):
    principal = authenticate()
    with current_app.extensions["llmgw"].sessions() as session:
        job = load_job(session, principal, job_id)
        return job_view(job).model_dump(mode="json")
