"""`POST /v1/jobs/<id>/feedback`: a client's score of a job's answer (evidence for promotion)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.contract import endpoint
from api.errors import ApiError
from api.jobs import visible_to
from api.schemas import UtcDatetime
from jobs.service import load_job
from jobs.status import JobStatus
from storage.models import JobFeedback, utcnow

bp = Blueprint("feedback", __name__, url_prefix="/v1/jobs")
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.INCOMPLETE})


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    score: int = Field(ge=1, le=5, description="1 (bad) … 5 (excellent)")
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackOut(BaseModel):
    object: Literal["job.feedback"] = "job.feedback"
    job_id: str
    score: int
    comment: str | None
    created_at: UtcDatetime


@endpoint(
    bp,
    "POST",
    "/<job_id>/feedback",
    summary="Score a finished job's answer (1-5, optional comment)",
    tag="jobs",
    operation_id="createJobFeedback",
    body=FeedbackIn,
    response=FeedbackOut,
    status=201,
    errors=(404, 409),
)
def leave_feedback(job_id: str, body: FeedbackIn):
    principal = authenticate()
    with current_app.extensions["llmgw"].sessions() as session:
        job = load_job(session, job_id, visible_to(principal))
        if job.status not in FINISHED:
            raise ApiError(409, "job_not_finished", f"Job {job_id} is {job.status}; rate it later.")
        feedback = session.get(JobFeedback, job.id) or JobFeedback(job_id=job.id)
        feedback.owner, feedback.score, feedback.comment = principal.id, body.score, body.comment
        feedback.created_at = utcnow()
        session.add(feedback)
        session.commit()
        view = FeedbackOut(
            job_id=job.id,
            score=feedback.score,
            comment=feedback.comment,
            created_at=feedback.created_at,
        )
    return view, 201
