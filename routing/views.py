"""The catalogue as plain dicts: what the HTTP API returns and the CLI prints.

Beside the domain (not in `api/`) so that the API and the CLI share one presentation
without the CLI importing Flask views.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict
from typing import Any

from sqlalchemy import desc, select
from sqlalchemy.orm import Session

from routing.ops import event_view
from routing.snapshot import ModelEntry
from storage.models import CatalogueEvent, utcnow


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
                "capabilities": list(v.capabilities),
            }
            for v in model.versions
        ],
        "versions": [{"version": r.version, "channel": r.channel} for r in model.releases],
        "sunset_policy": model.sunset_policy,
        "successor": model.successor,
        "pricing": asdict(model.pricing) if model.pricing else None,
    }


def _iso(value) -> str | None:  # noqa: ANN001 - datetime | None
    return value.isoformat() if value else None


def model_detail(model: ModelEntry) -> dict[str, Any]:
    """`model_view` plus what admins see: upstream ids, priorities, releases, equivalents."""
    view = model_view(model)
    view["channels"] = [
        {**c, "upstream_id": v.upstream_id, "priority": v.priority}
        for c, v in zip(view["channels"], model.versions, strict=True)
    ]
    view["versions"] = [
        {"version": r.version, "channel": r.channel, "upstream_id": r.upstream_id}
        for r in model.releases
    ]
    view["deprecation_days"] = model.deprecation_days
    view["equivalents"] = list(model.equivalents)
    return view


def recent_events(session: Session, model: str, *, limit: int) -> list[dict[str, Any]]:
    """MODEL's catalogue audit log, newest first."""
    rows = session.scalars(
        select(CatalogueEvent)
        .where(CatalogueEvent.model == model)
        .order_by(desc(CatalogueEvent.id))
        .limit(limit)
    )
    return [event_view(e) for e in rows]
