"""Liveness and readiness."""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from api.contract import endpoint
from api.errors import error_response

bp = Blueprint("health", __name__)


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str  # the gateway's release (the installed package's version)


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


@endpoint(
    bp,
    "GET",
    "/healthz",
    summary="Liveness",
    tag="meta",
    operation_id="getHealth",
    response=HealthOut,
    auth="none",
)
def healthz():
    return {"status": "ok", "version": package_version("llmgw")}


@endpoint(
    bp,
    "GET",
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    tag="meta",
    operation_id="getMetrics",
    media_type="text/plain",
    auth="none",
)
def metrics():
    from monitoring.metrics import exposition

    body, content_type = exposition(current_app.extensions["llmgw"].collector)
    return body, 200, {"Content-Type": content_type}


@endpoint(
    bp,
    "GET",
    "/openapi.json",
    summary="This document, generated from the declared contracts",
    tag="meta",
    operation_id="getOpenApi",
    response=OpenApiDocument,
    auth="none",
)
def openapi():
    from api.openapi import build_openapi

    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_openapi(current_app)
    return current_app.extensions["openapi"]


@endpoint(
    bp,
    "GET",
    "/readyz",
    summary="Readiness: Redis and the database are reachable",
    tag="meta",
    operation_id="getReady",
    response=ReadyOut,
    errors=(503,),
    auth="none",
)
def readyz():
    runtime = current_app.extensions["llmgw"]
    checks = {"redis": _check(lambda: runtime.redis.ping()), "database": _check(_db(runtime))}
    failing = {name: why for name, why in checks.items() if why != "ok"}
    if failing:
        reasons = "; ".join(f"{name}: {why}" for name, why in failing.items())
        return error_response(503, "not_ready", f"Not ready: {reasons}", checks=checks)
    return {"status": "ready", "checks": checks}


def _db(runtime):
    def check() -> None:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means not ready; the reason goes to the caller
        return f"unreachable ({type(exc).__name__})"
    return "ok"
