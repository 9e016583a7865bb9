"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text

from api.errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/metrics")
def metrics():
    from monitoring.metrics import exposition

    body, content_type = exposition(current_app.extensions["llmgw"].collector)
    return body, 200, {"Content-Type": content_type}


@bp.get("/openapi.json")
def openapi():
    from api.openapi import build_openapi

    return build_openapi()


@bp.get("/readyz")
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
