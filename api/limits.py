"""`/v1/admin/limits`: gateway-wide limits per model or version, and `/v1/usage`.

A gateway limit applies to every key's requests for that model (`yandexgpt`: every channel)
or version (`yandexgpt:rc`), on top of each key's own limits (docs/limits.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.context import services
from api.contract import endpoint
from api.errors import ApiError
from api.schemas import IsoDatetime, ListOf, UtcDatetime, naive_utc
from jobs.usage import usage
from routing.model_id import parse_model_id
from storage.gateway_limits import delete_gateway_limit, list_gateway_limits, put_gateway_limit
from storage.limits import Limit
from storage.models import GatewayLimit

bp = Blueprint("limits", __name__, url_prefix="/v1/admin/limits")
usage_bp = Blueprint("usage", __name__)


class LimitFigures(Limit):
    """A limit object without `model` (the path names it)."""

    model: None = Field(default=None, exclude=True, json_schema_extra={"readOnly": True})


class GatewayLimitOut(Limit):
    model: str
    updated_at: UtcDatetime


class GatewayLimitList(ListOf):
    data: list[GatewayLimitOut]


def limit_view(row: GatewayLimit) -> GatewayLimitOut:
    return GatewayLimitOut(model=row.model, updated_at=row.updated_at, **row.limit)


@endpoint(
    bp,
    "PUT",
    "/<model_id>",
    summary="Admin: set the gateway-wide limit of a model or version (all keys together)",
    tag="limits",
    operation_id="adminPutLimit",
    body=LimitFigures,
    response=GatewayLimitOut,
    auth="admin",
    errors=(400,),
)
def put_limit(model_id: str, body: LimitFigures):
    parse_model_id(model_id)  # 400 invalid_model_id for what no model id can be
    if not body.amounts():
        raise ApiError(400, "invalid_request", "Give at least one figure of the limit.")
    with services().sessions() as session:
        row = put_gateway_limit(session, model_id, body)
        session.commit()
        services().admission.forget_gateway()  # this process: at once; others within 1 s
        return limit_view(row)


@endpoint(
    bp,
    "GET",
    "",
    summary="Admin: the gateway-wide limits",
    tag="limits",
    operation_id="adminListLimits",
    response=GatewayLimitList,
    auth="admin",
)
def list_limits():
    with services().sessions() as session:
        return GatewayLimitList(data=[limit_view(r) for r in list_gateway_limits(session)])


@endpoint(
    bp,
    "DELETE",
    "/<model_id>",
    summary="Admin: remove the gateway-wide limit of a model or version",
    tag="limits",
    operation_id="adminDeleteLimit",
    response=GatewayLimitOut,
    auth="admin",
    errors=(400, 404),
)
def delete_limit(model_id: str):
    parse_model_id(model_id)
    with services().sessions() as session:
        row = delete_gateway_limit(session, model_id)
        if row is None:
            raise ApiError(404, "limit_not_found", f"No gateway limit for {model_id!r}.")
        session.commit()
        services().admission.forget_gateway()
        return limit_view(row)


class UsageRowOut(BaseModel):
    key_id: str | None = None
    model: str
    channel: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class UsageList(ListOf):
    data: list[UsageRowOut]


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: IsoDatetime | None = Field(
        default=None, alias="from", description="finished at or after"
    )
    to: IsoDatetime | None = Field(default=None, description="finished before")


class AdminUsageQuery(UsageQuery):
    key_id: str | None = Field(default=None, max_length=32)
    group_by: Literal["model", "key"] = Field(
        default="model", description="`key`: one row per key, model and channel"
    )


def naive(value: datetime | None) -> datetime | None:
    return naive_utc(value) if value is not None else None


@endpoint(
    usage_bp,
    "GET",
    "/v1/usage",
    summary="The calling key's usage, from finished jobs, per model and channel",
    tag="usage",
    operation_id="getUsage",
    query=UsageQuery,
    response=UsageList,
)
def own_usage(query: UsageQuery):
    principal = authenticate()
    with services().sessions() as session:
        rows = usage(session, owner=principal.id, since=naive(query.from_), until=naive(query.to))
    return UsageList(data=[UsageRowOut(**r.as_dict()) for r in rows])


@endpoint(
    usage_bp,
    "GET",
    "/v1/admin/usage",
    summary="Admin: usage of one key or all keys, from finished jobs",
    tag="usage",
    operation_id="adminGetUsage",
    query=AdminUsageQuery,
    response=UsageList,
    auth="admin",
)
def admin_usage(query: AdminUsageQuery):
    with services().sessions() as session:
        rows = usage(
            session,
            owner=query.key_id,
            since=naive(query.from_),
            until=naive(query.to),
            by_key=query.group_by == "key",
        )
    return UsageList(data=[UsageRowOut(**r.as_dict()) for r in rows])
