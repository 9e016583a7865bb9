"""`/v1/admin/models`: catalogue operations for admin keys, audited with the key id as actor."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_admin
from api.errors import ApiError
from routing import ops, stats
from routing.breaker import CircuitBreaker
from routing.snapshot import load_catalogue
from routing.views import model_detail, recent_events
from storage.models import KeyRoutingPolicy

bp = Blueprint("admin", __name__, url_prefix="/v1/admin/models")
keys_bp = Blueprint("admin_routing", __name__, url_prefix="/v1/admin/routing")
log = logging.getLogger(__name__)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)


class PromoteIn(_Body):
    deprecation_days: int | None = Field(default=None, ge=1, le=3650)


class TargetIn(_Body):
    channel: str | None = None


class DeprecateIn(TargetIn):
    sunset_at: datetime | None = None
    successor: str | None = None


class PinIn(_Body):
    channel: str
    version: str = Field(min_length=1, max_length=64)
    upstream_id: str | None = Field(default=None, max_length=200)


class PolicyIn(_Body):
    sunset_policy: str | None = None
    successor: str | None = None
    deprecation_days: int | None = Field(default=None, ge=1, le=3650)
    equivalents: list[str] | None = None


class KeyPolicyIn(_Body):
    cross_provider: bool | None = Field(
        description="true/false: the key's requests may/may not fall back to another provider; "
        "null: each request decides"
    )


def _body(schema: type[_Body]) -> Any:
    return schema.model_validate(request.get_json(silent=True) or {})


def _apply(op, *args: Any, **kwargs: Any):  # noqa: ANN001, ANN202 - an ops function
    runtime = current_app.extensions["llmgw"]
    return ops.apply_op(runtime.sessions, runtime.redis, op, *args, **kwargs), 200


def _target(name: str, channel: str | None) -> str:
    return f"{name}:{channel}" if channel else name


@bp.get("")
def list_models():
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        catalogue = load_catalogue(session)
    models = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    return {"object": "list", "data": [model_detail(m) for m in models]}


@bp.get("/<name>")
def show_model(name: str):
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        model = load_catalogue(session).find(name)
        events = recent_events(session, model.name, limit=20)
    return {**model_detail(model), "events": events}


@bp.get("/<name>/events")
def modelrecent_events(name: str):
    require_admin()
    limit = request.args.get("limit", default=100, type=int)
    with current_app.extensions["llmgw"].sessions() as session:
        model = ops.find_model(session, name)
        return {
            "object": "list",
            "data": recent_events(session, model.name, limit=min(limit, 1000)),
        }


def _days(raw: str | None) -> float:
    if raw is None:
        return stats.DEFAULT_DAYS
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not 0 < days <= 366:
        raise ApiError(400, "invalid_days", "days must be a number of days between 0 and 366.")
    return days


@bp.get("/<name>/compare")
def compare(name: str):
    require_admin()
    channels = request.args.getlist("channel") or ["rc", "latest"]
    days = _days(request.args.get("days"))
    with current_app.extensions["llmgw"].sessions() as session:
        return stats.compare(session, name, channels, days=days)


@bp.post("/<name>/promote")
def promote(name: str):
    actor, body = require_admin().id, _body(PromoteIn)
    return _apply(
        ops.promote, name, actor=actor, deprecation_days=body.deprecation_days, reason=body.reason
    )


@bp.post("/<name>/rollback")
def rollback(name: str):
    actor, body = require_admin().id, _body(_Body)
    return _apply(ops.rollback, name, actor=actor, reason=body.reason)


@bp.post("/<name>/deprecate")
def deprecate(name: str):
    actor, body = require_admin().id, _body(DeprecateIn)
    return _apply(
        ops.deprecate,
        _target(name, body.channel),
        actor=actor,
        sunset_at=body.sunset_at,
        successor=body.successor,
        reason=body.reason,
    )


@bp.post("/<name>/retire")
def retire(name: str):
    actor, body = require_admin().id, _body(TargetIn)
    return _apply(ops.retire, _target(name, body.channel), actor=actor, reason=body.reason)


@bp.post("/<name>/pin")
def pin(name: str):
    actor, body = require_admin().id, _body(PinIn)
    return _apply(
        ops.pin,
        name,
        body.channel,
        body.version,
        actor=actor,
        upstream_id=body.upstream_id,
        reason=body.reason,
    )


@bp.post("/<name>/policy")
def policy(name: str):
    actor, body = require_admin().id, _body(PolicyIn)
    fields = body.model_dump(exclude={"reason"})
    return _apply(ops.set_policy, name, actor=actor, reason=body.reason, **fields)


@keys_bp.put("/keys/<key_id>")
def set_key_policy(key_id: str):
    actor, body = require_admin().id, _body(KeyPolicyIn)
    return _apply(
        ops.set_key_policy,
        key_id,
        actor=actor,
        cross_provider=body.cross_provider,
        reason=body.reason,
    )


@keys_bp.get("/keys/<key_id>")
def get_key_policy(key_id: str):
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        row = session.get(KeyRoutingPolicy, key_id)
        return {"key_id": key_id, "cross_provider": row.cross_provider if row else None}


@keys_bp.get("/circuits")
def list_circuits():
    """Every channel's circuit: state, deadline and the current window's counts."""
    require_admin()
    runtime = current_app.extensions["llmgw"]
    with runtime.sessions() as session:
        catalogue = load_catalogue(session)
    breaker = CircuitBreaker(runtime.redis)
    keys = sorted(
        f"{m.provider}:{m.name}:{v.channel}" for m in catalogue.models.values() for v in m.versions
    )
    refusing = breaker.open_keys(keys)
    circuits = [
        {"key": key, **asdict(breaker.state(key)), "refusing": key in refusing} for key in keys
    ]
    return {"object": "list", "data": circuits}


@keys_bp.post("/circuits/<key>/reset")
def reset_circuit(key: str):
    """Close a circuit by hand (logged, not audited: circuits are not catalogue state)."""
    principal = require_admin()
    had_state = CircuitBreaker(current_app.extensions["llmgw"].redis).reset(key)
    log.warning("circuit %s reset by %s", key, principal.id)
    return {"key": key, "reset": had_state}
