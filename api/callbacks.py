"""`/v1/callbacks`: a key's callback-signing secret (read, rotate), and the JSON a callback
carries (`callback_body`, handed to the worker's deliverer by the composition root).
How a receiver verifies a delivery: docs/api.md, Completion callbacks; the design:
`jobs/signing.py`, `jobs/callbacks.py`."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import authenticate
from api.batches import batch_view
from api.context import services
from api.contract import RATE_LIMIT_HEADERS, endpoint
from api.service import job_view
from jobs import signing
from jobs.callbacks import rotate_secret, secret_version
from storage.models import Batch, CallbackDelivery, Job

bp = Blueprint("callbacks", __name__, url_prefix="/v1/callbacks")


class CallbackSecretOut(BaseModel):
    object: Literal["callback_secret"] = "callback_secret"
    secret: str = Field(description="HMAC-SHA256 key of `X-Llmgw-Signature` (keep it secret)")
    version: int = Field(description="sent as `X-Llmgw-Secret-Version`; rotating adds one")
    algorithm: Literal["hmac-sha256"] = "hmac-sha256"
    signed_payload: str = Field(
        default="<X-Llmgw-Timestamp>.<raw body>", description="what the signature covers"
    )


def secret_out(key_id: str, version: int) -> CallbackSecretOut:
    master = services().callbacks.master()  # 503 `callbacks_unavailable` when unset
    return CallbackSecretOut(secret=signing.key_secret(master, key_id, version), version=version)


@endpoint(
    bp,
    "GET",
    "/secret",
    summary="Read the caller's callback-signing secret",
    tag="callbacks",
    operation_id="getCallbackSecret",
    response=CallbackSecretOut,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(503,),
)
def get_secret():
    principal = authenticate()
    with services().sessions() as session:
        return secret_out(principal.id, secret_version(session, principal.id))


@endpoint(
    bp,
    "POST",
    "/secret/rotate",
    summary="Rotate the caller's callback-signing secret",
    description="Every delivery from now on, retries of earlier ones included, is signed "
    "with the new secret; the old one stops at once.",
    tag="callbacks",
    operation_id="rotateCallbackSecret",
    response=CallbackSecretOut,
    response_headers=RATE_LIMIT_HEADERS,
    errors=(503,),
)
def rotate():
    principal = authenticate()
    services().callbacks.master()  # refuse before changing anything
    with services().sessions() as session:
        version = rotate_secret(session, principal.id)
        session.commit()
    return secret_out(principal.id, version)


def callback_body(session: Session, delivery: CallbackDelivery) -> dict[str, Any]:
    """The body of `GET /v1/jobs/<id>` or `GET /v1/batches/<id>` for the delivery's subject."""
    if delivery.job_id is not None:
        return job_view(session.get_one(Job, delivery.job_id)).model_dump(mode="json")
    assert delivery.batch_id is not None
    return batch_view(session.get_one(Batch, delivery.batch_id)).model_dump(mode="json")
