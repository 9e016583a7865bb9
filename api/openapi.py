"""The OpenAPI document, generated from the pydantic request/response models.

`OPERATIONS` is the one table of documented endpoints; a test checks it matches the Flask
URL map, so the document cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.admin import DeprecateIn, KeyPolicyIn, PinIn, PolicyIn, PromoteIn, TargetIn
from api.chat import ChatCompletionRequest
from api.feedback import FeedbackIn
from api.keys import KeyCreate, KeyCreated, KeyOut
from api.schemas import ErrorBody, JobCreate, JobOut


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    params: tuple[dict[str, Any], ...] = field(default_factory=tuple)


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Long-poll: seconds to wait for the job to end (up to the server's bound).",
    "schema": {"type": "number", "minimum": 0},
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key + same body returns the same job; a different body is a 409.",
    "schema": {"type": "string", "maxLength": 255},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "Liveness"),
    Operation("get", "/openapi.json", "This document"),
    Operation("get", "/metrics", "Prometheus metrics (text exposition format)"),
    Operation("get", "/readyz", "Readiness: Redis and the database are reachable", errors=(503,)),
    Operation(
        "post",
        "/v1/jobs",
        "Submit a completion job",
        JobCreate,
        JobOut,
        202,
        (400, 401, 404, 409, 415, 503),
        (IDEMPOTENCY,),
    ),
    Operation(
        "get",
        "/v1/jobs/{job_id}",
        "Read (or long-poll) a job",
        None,
        JobOut,
        200,
        (400, 401, 404),
        (JOB_ID, WAIT),
    ),
    Operation(
        "delete",
        "/v1/jobs/{job_id}",
        "Cancel a queued or running job",
        None,
        JobOut,
        200,
        (401, 404, 409),
        (JOB_ID,),
    ),
    Operation(
        "post",
        "/v1/chat/completions",
        "OpenAI-compatible completion: one JSON answer, or with `stream: true` server-sent "
        "`chat.completion.chunk` events ending in `data: [DONE]`, or in an error event if cut",
        ChatCompletionRequest,
        None,
        200,
        (400, 401, 404, 429, 502, 504),
        (IDEMPOTENCY,),
    ),
)


# Catalogue, routing dry-run, feedback and admin operations (issue 4: routing/, api/models.py,
# api/admin.py, api/feedback.py).
MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
RESOLVE_QUERY = (
    {"name": "cross_provider", "in": "query", "schema": {"type": "boolean"}},
    {"name": "fallback", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
    {"name": "estimated_tokens", "in": "query", "schema": {"type": "integer", "minimum": 0}},
)
_ADMIN_POSTS = (
    ("promote", "Promote rc to latest (old latest → deprecated with a sunset)", PromoteIn),
    ("rollback", "Undo the last promote", None),
    ("deprecate", "Deprecate a channel or the whole model", DeprecateIn),
    ("retire", "Retire a channel or the whole model", TargetIn),
    ("pin", "Point a channel at a concrete version", PinIn),
    ("policy", "Set the sunset policy, successor, deprecation days, equivalents", PolicyIn),
)
OPERATIONS += (
    Operation("get", "/v1/models", "Models with channels, versions and status (OpenAI shape)"),
    Operation(
        "get", "/v1/models/{model_id}", "One model", errors=(400, 401, 404), params=(MODEL_ID,)
    ),
    Operation(
        "get",
        "/v1/models/{model_id}/resolve",
        "Routing dry-run: route and fallback plan with reasons, no provider call",
        errors=(400, 401, 404, 410),
        params=(MODEL_ID, *RESOLVE_QUERY),
    ),
    Operation(
        "post",
        "/v1/jobs/{job_id}/feedback",
        "Score a finished job's answer (1-5, optional comment)",
        FeedbackIn,
        None,
        201,
        (400, 401, 404, 409),
        (JOB_ID,),
    ),
    Operation("get", "/v1/admin/models", "Admin: the catalogue", errors=(401, 403)),
    Operation(
        "get",
        "/v1/admin/models/{name}",
        "Admin: one model and its recent events",
        errors=(401, 403, 404),
        params=(NAME,),
    ),
    Operation(
        "get",
        "/v1/admin/models/{name}/events",
        "Admin: the model's audit log",
        errors=(401, 403, 404),
        params=(NAME,),
    ),
    Operation(
        "get",
        "/v1/admin/models/{name}/compare",
        "Admin: channels side by side (latency, errors, fallbacks, feedback)",
        errors=(401, 403, 404),
        params=(NAME,),
    ),
    Operation(
        "get", "/v1/admin/routing/circuits", "Admin: every circuit's state", errors=(401, 403)
    ),
    Operation(
        "post",
        "/v1/admin/routing/circuits/{key}/reset",
        "Admin: close a circuit by hand",
        errors=(401, 403),
        params=({"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},),
    ),
    Operation(
        "get",
        "/v1/admin/routing/keys/{key_id}",
        "Admin: a key's routing policy",
        errors=(401, 403),
        params=(KEY_ID,),
    ),
    Operation(
        "put",
        "/v1/admin/routing/keys/{key_id}",
        "Admin: set a key's cross-provider fallback policy (audited)",
        KeyPolicyIn,
        None,
        200,
        (400, 401, 403),
        (KEY_ID,),
    ),
    *(
        Operation(
            "post",
            f"/v1/admin/models/{{name}}/{verb}",
            f"Admin: {summary}",
            body,
            None,
            200,
            (400, 401, 403, 404, 409),
            (NAME,),
        )
        for verb, summary, body in _ADMIN_POSTS
    ),
)


KEY_PATH = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
OPERATIONS += (
    Operation(
        "post",
        "/v1/admin/keys",
        "Admin: create an API key (its secret is shown once)",
        KeyCreate,
        KeyCreated,
        201,
        (400, 401, 403),
    ),
    Operation("get", "/v1/admin/keys", "Admin: API keys (never their secrets)", errors=(401, 403)),
    Operation(
        "delete",
        "/v1/admin/keys/{key_id}",
        "Admin: revoke an API key at once",
        None,
        KeyOut,
        200,
        (401, 403, 404),
        (KEY_PATH,),
    ),
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {"summary": op.summary, "parameters": list(op.params)}
    if op.request is not None:
        body["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.request)}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(op.response)}}
    error = {"content": {"application/json": {"schema": _ref(ErrorBody)}}}
    body["responses"] = {str(op.status): ok} | {
        str(code): {"description": "Error", **error} for code in op.errors
    }
    if op.path.startswith("/v1/"):
        body["security"] = [{"bearer": []}]
    return body


def build_openapi() -> dict[str, Any]:
    models = {m for op in OPERATIONS for m in (op.request, op.response) if m} | {ErrorBody}
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmgw", "version": package_version("llmgw")},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
