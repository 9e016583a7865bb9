"""`/v1/admin/models`: catalogue operations for admin keys, audited with the key id as actor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from api.auth import MASTER_ID, require_admin
from api.contract import endpoint
from api.errors import ApiError
from api.models import ChannelOut, ModelOut, ReleaseOut
from api.schemas import ListOf, Out, UtcDatetime
from routing import ops, stats
from routing.snapshot import load_catalogue
from routing.views import model_detail, recent_events
from storage.models import ApiKey, KeyRoutingPolicy

bp = Blueprint("admin", __name__, url_prefix="/v1/admin/models")
keys_bp = Blueprint("admin_routing", __name__, url_prefix="/v1/admin/routing")
log = logging.getLogger(__name__)


class _Body(BaseModel):
    """Strict like the job body: `"5"` is no integer, `"yes"` no boolean."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str | None = Field(default=None, max_length=1000)


class PromoteIn(_Body):
    deprecation_days: int | None = Field(default=None, ge=1, le=3650, strict=True)


class TargetIn(_Body):
    channel: str | None = None


class DeprecateIn(TargetIn):
    sunset_at: datetime | None = Field(default=None, strict=False)  # JSON has no datetime type
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
        strict=True,
        description="true/false: the key's requests may/may not fall back to another provider; "
        "null: each request decides",
    )


class EventOut(Out):
    id: int
    at: UtcDatetime
    actor: str
    action: str
    model: str
    reason: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class OpResult(EventOut):
    """The audit event the operation wrote, and whether every cache was told."""

    cache_invalidated: bool


class EventList(ListOf):
    data: list[EventOut]


class AdminChannelOut(ChannelOut):
    upstream_id: str
    priority: int


class AdminReleaseOut(ReleaseOut):
    upstream_id: str


class AdminModelOut(ModelOut):
    channels: list[AdminChannelOut]  # type: ignore[assignment]
    versions: list[AdminReleaseOut]  # type: ignore[assignment]
    deprecation_days: int | None = None
    equivalents: list[str]


class AdminModelList(ListOf):
    data: list[AdminModelOut]


class AdminModelDetail(AdminModelOut):
    events: list[EventOut] = Field(description="the 20 most recent audit events")


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=100, ge=1, le=1000, description="how many events, newest first")


class CompareQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: list[str] = Field(
        default_factory=list, max_length=10, description="channels to compare (rc, latest)"
    )
    days: float = Field(
        default=stats.DEFAULT_DAYS, gt=0, le=366, allow_inf_nan=False, description="window"
    )


class CompareOut(Out):
    model: str
    since: UtcDatetime
    days: float
    versions: list[dict[str, Any]]


class CircuitOut(Out):
    key: str
    state: str
    open_until: float | None = None
    calls: int
    fails: int
    refusing: bool


class CircuitList(ListOf):
    data: list[CircuitOut]


class CircuitReset(Out):
    key: str
    reset: bool


class KeyPolicyOut(Out):
    key_id: str
    cross_provider: bool | None


def _apply(op, *args: Any, **kwargs: Any):  # noqa: ANN001, ANN202 - an ops function
    runtime = current_app.extensions["llmgw"]
    return ops.apply_op(runtime.sessions, runtime.redis, op, *args, **kwargs), 200


def _target(name: str, channel: str | None) -> str:
    return f"{name}:{channel}" if channel else name


def require_known_key(key_id: str) -> None:
    """404 unless `key_id` is the master key's or a row of `api_keys` (revoked ones count:
    their history stays readable)."""
    if key_id == MASTER_ID:
        return
    with current_app.extensions["llmgw"].sessions() as session:
        if session.get(ApiKey, key_id) is None:
            raise ApiError(404, "key_not_found", f"No API key with id {key_id!r}.")


def _no_check(_target: str) -> None:
    """Model operations find their model themselves (404 `model_not_found`)."""


@endpoint(
    bp,
    "GET",
    "",
    summary="Admin: the catalogue",
    tag="admin",
    operation_id="adminListModels",
    response=AdminModelList,
    auth="admin",
)
def list_models():
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        catalogue = load_catalogue(session)
    models = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    return {"object": "list", "data": [model_detail(m) for m in models]}


@endpoint(
    bp,
    "GET",
    "/<name>",
    summary="Admin: one model and its recent events",
    tag="admin",
    operation_id="adminGetModel",
    response=AdminModelDetail,
    auth="admin",
    errors=(404,),
)
def show_model(name: str):
    require_admin()
    with current_app.extensions["llmgw"].sessions() as session:
        model = load_catalogue(session).find(name)
        events = recent_events(session, model.name, limit=20)
    return {**model_detail(model), "events": events}


@endpoint(
    bp,
    "GET",
    "/<name>/events",
    summary="Admin: the model's audit log",
    tag="admin",
    operation_id="adminListModelEvents",
    query=EventsQuery,
    response=EventList,
    auth="admin",
    errors=(404,),
)
def model_events(name: str, query: EventsQuery):
    with current_app.extensions["llmgw"].sessions() as session:
        model = ops.find_model(session, name)
        return {"object": "list", "data": recent_events(session, model.name, limit=query.limit)}


@endpoint(
    bp,
    "GET",
    "/<name>/compare",
    summary="Admin: channels side by side (latency, errors, fallbacks, feedback)",
    tag="admin",
    operation_id="adminCompareChannels",
    query=CompareQuery,
    response=CompareOut,
    auth="admin",
    errors=(404,),
)
def compare(name: str, query: CompareQuery):
    with current_app.extensions["llmgw"].sessions() as session:
        return stats.compare(session, name, query.channel or ["rc", "latest"], days=query.days)


# -- catalogue operations: one declared pattern, one row each ------------------------------


@dataclass(frozen=True)
class AdminOp:
    """One audited catalogue operation: its URL, its body and how the body becomes the call."""

    verb: str
    summary: str
    body: type[_Body]
    call: Callable[[str, str, Any], tuple[dict[str, Any], int]]  # (path arg, actor, body)
    operation_id: str
    bp: Blueprint = bp
    method: str = "POST"
    rule: str = "/<name>/{verb}"
    errors: tuple[int, ...] = (404, 409)
    check: Callable[[str], None] = _no_check  # the path argument exists, or an ApiError


ADMIN_OPS = (
    AdminOp(
        "promote",
        "Promote rc to latest (old latest → deprecated with a sunset)",
        PromoteIn,
        lambda name, actor, b: _apply(
            ops.promote, name, actor=actor, deprecation_days=b.deprecation_days, reason=b.reason
        ),
        "adminPromoteModel",
    ),
    AdminOp(
        "rollback",
        "Undo the last promote",
        _Body,
        lambda name, actor, b: _apply(ops.rollback, name, actor=actor, reason=b.reason),
        "adminRollbackModel",
    ),
    AdminOp(
        "deprecate",
        "Deprecate a channel or the whole model",
        DeprecateIn,
        lambda name, actor, b: _apply(
            ops.deprecate,
            _target(name, b.channel),
            actor=actor,
            sunset_at=b.sunset_at,
            successor=b.successor,
            reason=b.reason,
        ),
        "adminDeprecateModel",
    ),
    AdminOp(
        "retire",
        "Retire a channel or the whole model",
        TargetIn,
        lambda name, actor, b: _apply(
            ops.retire, _target(name, b.channel), actor=actor, reason=b.reason
        ),
        "adminRetireModel",
    ),
    AdminOp(
        "pin",
        "Point a channel at a concrete version",
        PinIn,
        lambda name, actor, b: _apply(
            ops.pin,
            name,
            b.channel,
            b.version,
            actor=actor,
            upstream_id=b.upstream_id,
            reason=b.reason,
        ),
        "adminPinVersion",
    ),
    AdminOp(
        "policy",
        "Set the sunset policy, successor, deprecation days, equivalents",
        PolicyIn,
        lambda name, actor, b: _apply(
            ops.set_policy, name, actor=actor, reason=b.reason, **b.model_dump(exclude={"reason"})
        ),
        "adminSetModelPolicy",
    ),
    AdminOp(
        "set_key_policy",
        "Set a key's cross-provider fallback policy",
        KeyPolicyIn,
        lambda key_id, actor, b: _apply(
            ops.set_key_policy,
            key_id,
            actor=actor,
            cross_provider=b.cross_provider,
            reason=b.reason,
        ),
        "adminSetKeyPolicy",
        bp=keys_bp,
        method="PUT",
        rule="/keys/<key_id>",
        errors=(404, 409),
        check=require_known_key,
    ),
)


def declare_op(op: AdminOp) -> None:
    def view(body: _Body, **path: str) -> Any:
        (target,) = path.values()
        op.check(target)
        return op.call(target, require_admin().id, body)

    view.__name__ = view.__qualname__ = op.verb
    endpoint(
        op.bp,
        op.method,
        op.rule.format(verb=op.verb),
        summary=f"Admin: {op.summary} (audited)",
        tag="admin",
        operation_id=op.operation_id,
        body=op.body,
        response=OpResult,
        auth="admin",
        errors=op.errors,
    )(view)


for _op in ADMIN_OPS:
    declare_op(_op)


@endpoint(
    keys_bp,
    "GET",
    "/keys/<key_id>",
    summary="Admin: a key's routing policy",
    tag="admin",
    operation_id="adminGetKeyPolicy",
    response=KeyPolicyOut,
    auth="admin",
    errors=(404,),
)
def get_key_policy(key_id: str):
    require_admin()
    require_known_key(key_id)
    with current_app.extensions["llmgw"].sessions() as session:
        row = session.get(KeyRoutingPolicy, key_id)
        return {"key_id": key_id, "cross_provider": row.cross_provider if row else None}


@endpoint(
    keys_bp,
    "GET",
    "/circuits",
    summary="Admin: every circuit's state",
    tag="admin",
    operation_id="adminListCircuits",
    response=CircuitList,
    auth="admin",
)
def list_circuits():
    """Every channel's circuit: state, deadline and the current window's counts."""
    require_admin()
    keys = circuit_keys()
    breaker = current_app.extensions["llmgw"].breaker
    refusing = breaker.open_keys(keys)
    circuits = [
        {"key": key, **asdict(breaker.state(key)), "refusing": key in refusing} for key in keys
    ]
    return {"object": "list", "data": circuits}


@endpoint(
    keys_bp,
    "POST",
    "/circuits/<key>/reset",
    summary="Admin: close a circuit by hand",
    tag="admin",
    operation_id="adminResetCircuit",
    response=CircuitReset,
    auth="admin",
    errors=(404,),
)
def reset_circuit(key: str):
    """Close a circuit by hand (logged, not audited: circuits are not catalogue state)."""
    principal = require_admin()
    if key not in circuit_keys():
        raise ApiError(404, "circuit_not_found", f"No circuit {key!r}; see GET /circuits.")
    had_state = current_app.extensions["llmgw"].breaker.reset(key)
    log.warning("circuit %s reset by %s", key, principal.id)
    return {"key": key, "reset": had_state}


def circuit_keys() -> list[str]:
    """Every channel's circuit key, `<provider>:<model>:<channel>`, from the catalogue."""
    with current_app.extensions["llmgw"].sessions() as session:
        catalogue = load_catalogue(session)
    return sorted(
        f"{m.provider}:{m.name}:{v.channel}" for m in catalogue.models.values() for v in m.versions
    )
