"""`/v1/models`: the catalogue for every client (OpenAI-compatible list) and the routing dry-run."""

from __future__ import annotations

import calendar
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import authenticate
from routing.plan import FallbackPolicy
from routing.snapshot import ModelEntry
from storage.models import utcnow

bp = Blueprint("models", __name__, url_prefix="/v1/models")


class ResolveQuery(BaseModel):
    """Query of `GET /v1/models/<id>/resolve`: the same policy a job request can carry."""

    model_config = ConfigDict(extra="forbid")

    cross_provider: bool = False
    fallback: list[str] = Field(default_factory=list, max_length=10)
    estimated_tokens: int | None = Field(default=None, ge=0)


def model_view(model: ModelEntry) -> dict[str, Any]:
    """One OpenAI `model` object, plus llmgw's channels, versions and lifecycle policy."""
    released = [v.released_at for v in model.versions if v.released_at]
    now = utcnow()
    return {
        "id": model.name,
        "object": "model",
        "created": calendar.timegm(min(released).timetuple()) if released else 0,
        "owned_by": model.provider,
        "provider": model.provider,
        "family": model.family,
        "context_window": model.context_window,
        "aliases": list(model.aliases),
        "channels": [
            {
                "id": f"{model.name}:{v.channel}",
                "channel": v.channel,
                "version": v.version,
                "status": v.status,
                "deprecated_at": _iso(v.deprecated_at),
                "sunset_at": _iso(v.sunset_at),
                "past_sunset": v.past_sunset(now),
            }
            for v in model.versions
        ],
        "versions": [{"version": r.version, "channel": r.channel} for r in model.releases],
        "sunset_policy": model.sunset_policy,
        "successor": model.successor,
    }


def _iso(value) -> str | None:  # noqa: ANN001 - datetime | None
    return value.isoformat() if value else None


@bp.get("")
def list_models():
    authenticate()
    catalogue = current_app.extensions["llmgw"].resolver.catalogue()
    models = sorted(catalogue.models.values(), key=lambda m: m.name.lower())
    return {"object": "list", "data": [model_view(m) for m in models]}


@bp.get("/<model_id>")
def get_model(model_id: str):
    authenticate()
    resolver = current_app.extensions["llmgw"].resolver
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
    plan = runtime.resolver.plan(
        model_id,
        policy,
        estimated_tokens=query.estimated_tokens,
        breaker=runtime.breaker,
        key_id=principal.id,
    )
    body = {"object": "routing.plan", "key": principal.id, **plan.as_dict()}
    body["warnings"] = plan.route.warnings()
    return body, 200, plan.route.deprecation_headers()
