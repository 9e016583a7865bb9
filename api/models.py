"""`/v1/models`: the catalogue for every client (OpenAI-compatible list) and the routing dry-run."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from routing.breaker import CircuitBreaker
from routing.cache import resolver_for
from routing.plan import FallbackPolicy
from routing.views import model_view

bp = Blueprint("models", __name__, url_prefix="/v1/models")


class ResolveQuery(BaseModel):
    """Query of `GET /v1/models/<id>/resolve`: the same policy a job request can carry."""

    model_config = ConfigDict(extra="forbid")

    cross_provider: bool = False
    fallback: list[str] = Field(default_factory=list, max_length=10)
    estimated_tokens: int | None = Field(default=None, ge=0)


@bp.get("")
def list_models():
    authenticate()
    catalogue = resolver_for(current_app.extensions["llmgw"]).catalogue()
    models = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    return {"object": "list", "data": [model_view(m) for m in models]}


@bp.get("/<model_id>")
def get_model(model_id: str):
    authenticate()
    resolver = resolver_for(current_app.extensions["llmgw"])
    route = resolver.resolve(model_id)
    return model_view(resolver.catalogue().find(route.model))


@bp.get("/<model_id>/resolve")
def resolve_model(model_id: str):
    """Dry-run: the route and the full fallback plan for this key, with no provider call."""
    principal = authenticate()
    query = ResolveQuery.model_validate(
        {**request.args.to_dict(), "fallback": request.args.getlist("fallback")}
    )
    runtime = current_app.extensions["llmgw"]
    policy = FallbackPolicy(cross_provider=query.cross_provider, explicit=tuple(query.fallback))
    plan = resolver_for(runtime).plan(
        model_id,
        policy,
        estimated_tokens=query.estimated_tokens,
        breaker=CircuitBreaker(runtime.redis),
        key_id=principal.id,
    )
    body = {"object": "routing.plan", "key": principal.id, **plan.as_dict()}
    body["warnings"] = plan.route.warnings()
    return body, 200, plan.route.deprecation_headers()
