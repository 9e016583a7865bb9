"""`POST /v1/jobs/<id>/feedback`: a client's score of a job's answer (evidence for promotion)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.errors import ApiError
from api.jobs import visible_to
from jobs.service import load_job
from jobs.status import JobStatus
from storage.models import JobFeedback, utcnow

bp = Blueprint("feedback", __name__, url_prefix="/v1/jobs")
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.INCOMPLETE})


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, description="1 (bad) … 5 (excellent)")
    comment: str | None = Field(default=None, max_length=4000)


@bp.post("/<job_id>/feedback")
def leave_feedback(job_id: str):
    principal = authenticate()
    body = FeedbackIn.model_validate(request.get_json(silent=True) or {})
    with current_app.extensions["llmgw"].sessions() as session:
        job = load_job(session, job_id, visible_to(principal))
        if job.status not in FINISHED:
            raise ApiError(409, "job_not_finished", f"Job {job_id} is {job.status}; rate it later.")
        feedback = session.get(JobFeedback, job.id) or JobFeedback(job_id=job.id)
        feedback.owner, feedback.score, feedback.comment = principal.id, body.score, body.comment
        feedback.created_at = utcnow()
        session.add(feedback)
        session.commit()
        view = {
            "object": "job.feedback",
            "job_id": job.id,
            "score": feedback.score,
            "comment": feedback.comment,
            "created_at": feedback.created_at.isoformat(),
        }
    return view, 201
