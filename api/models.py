"""`/v1/models`: the catalogue for every client (OpenAI-compatible list) and the routing dry-run."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from api.contract import DEPRECATION_HEADERS, endpoint
from api.schemas import CandidateOut, ListOf, Out, PlannedRouteOut, UtcDatetime
from routing import capabilities as cap
from routing.plan import FallbackPolicy, Requirement
from routing.views import channel_view, model_view, model_views

bp = Blueprint("models", __name__, url_prefix="/v1/models")


class ResolveQuery(BaseModel):
    """Query of `GET /v1/models/<id>/resolve`: the same policy a job request can carry."""

    model_config = ConfigDict(extra="forbid")

    cross_provider: bool = Field(
        default=False, description="allow the equivalent model of the other provider"
    )
    fallback: list[str] = Field(
        default_factory=list, max_length=10, description="model ids to try after the chain"
    )
    estimated_tokens: int | None = Field(
        default=None, ge=0, le=10_000_000, description="skip versions whose context is smaller"
    )
    features: list[Literal["stream", "tools", "json_object", "json_schema"]] = Field(
        default_factory=list,
        max_length=4,
        description="what the request would use (repeatable): skip versions without it",
    )


class ChannelOut(Out):
    id: str
    channel: str
    version: str | None
    status: str
    deprecated_at: UtcDatetime | None = None
    sunset_at: UtcDatetime | None = None
    past_sunset: bool
    capabilities: list[str] = Field(
        description="What this version serves: chat, stream, tools, json_object, "
        "json_schema, embeddings"
    )


class PricingOut(Out):
    currency: str
    prompt_per_1k: float
    completion_per_1k: float


class ReleaseOut(Out):
    version: str
    channel: str | None = None


class ModelOut(Out):
    """An OpenAI `model` object, plus llmgw's channels, versions and lifecycle policy."""

    id: str = Field(description="The base name, or a selectable `<model>:<channel>` id")
    object: Literal["model"] = "model"
    created: int = Field(
        description="Unix seconds: the version's release date (docs/versioning.md)"
    )
    owned_by: str
    parent: str | None = Field(
        default=None, description="For a `<model>:<channel>` id, its base model"
    )
    provider: str
    family: str | None = None
    context_window: int | None = None
    aliases: list[str]
    channels: list[ChannelOut]
    versions: list[ReleaseOut]
    sunset_policy: str | None = None
    successor: str | None = None
    pricing: PricingOut | None = Field(
        default=None, description="List price per 1,000 tokens; null where none is set"
    )


class ModelList(ListOf):
    data: list[ModelOut]


class PlanOut(Out):
    """The routing dry-run: route, policy, candidates in order and the skipped, with reasons."""

    object: Literal["routing.plan"] = "routing.plan"
    key: str
    requested: str
    route: PlannedRouteOut
    policy: dict[str, Any]
    candidates: list[CandidateOut]
    skipped: list[CandidateOut]
    warnings: list[dict[str, str]] = Field(default_factory=list)


@endpoint(
    bp,
    "GET",
    "",
    summary="Models with channels, versions and status (OpenAI shape)",
    tag="models",
    operation_id="listModels",
    response=ModelList,
)
def list_models():
    authenticate()
    catalogue = current_app.extensions["llmgw"].resolver.catalogue()
    models = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    return {"object": "list", "data": [view for m in models for view in model_views(m)]}


@endpoint(
    bp,
    "GET",
    "/<model_id>",
    summary="One model, by base id, alias or `<model>:<channel>` id",
    tag="models",
    operation_id="getModel",
    response=ModelOut,
    errors=(400, 404, 410),
)
def get_model(model_id: str):
    authenticate()
    resolver = current_app.extensions["llmgw"].resolver
    route = resolver.resolve(model_id)
    model = resolver.catalogue().find(route.model)
    if ":" not in model_id:
        return model_view(model)
    version = model.channel(route.channel)
    return channel_view(model, version) if version is not None else model_view(model)


@endpoint(
    bp,
    "GET",
    "/<model_id>/resolve",
    summary="Routing dry-run: route and fallback plan with reasons, no provider call",
    tag="models",
    operation_id="resolveModel",
    query=ResolveQuery,
    response=PlanOut,
    response_headers=DEPRECATION_HEADERS,
    errors=(400, 404, 410, 503),
)
def resolve_model(model_id: str, query: ResolveQuery):
    """Dry-run: the route and the full fallback plan for this key, with no provider call."""
    principal = authenticate()
    runtime = current_app.extensions["llmgw"]
    policy = FallbackPolicy(cross_provider=query.cross_provider, explicit=tuple(query.fallback))
    plan = runtime.resolver.plan(
        model_id,
        policy,
        estimated_tokens=query.estimated_tokens,
        breaker=runtime.breaker,
        key_id=principal.id,
        requirements=tuple(Requirement(name, name) for name in cap.normalize(query.features)),
    )
    body = {"object": "routing.plan", "key": principal.id, **plan.as_dict()}
    body["warnings"] = plan.route.warnings()
    return body, 200, plan.route.deprecation_headers()
