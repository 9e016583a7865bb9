"""Version resolution: a model id becomes a route (provider, upstream id, queue)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from routing.errors import UnknownChannel, UnknownModel
from routing.model_id import parse_model_id, queue_name
from storage.models import Model


@dataclass(frozen=True)
class Route:
    provider: str
    model: str
    channel: str
    upstream_id: str
    queue: str
    status: str
    sunset_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sunset_at"] = self.sunset_at.isoformat() if self.sunset_at else None
        return data


def resolve(session: Session, model_id: str) -> Route:
    ref = parse_model_id(model_id)
    model = session.scalar(select(Model).where(func.lower(Model.name) == ref.model.lower()))
    if model is None:
        names = sorted(session.scalars(select(Model.name)))
        raise UnknownModel(f"Model {ref.model!r} does not exist.", choices=names)
    version = next((v for v in model.versions if v.channel == ref.channel), None)
    if version is None or version.status == "retired":
        channels = [v.channel for v in model.versions if v.status != "retired"]
        raise UnknownChannel(
            f"Model {model.name!r} has no channel {ref.channel!r}.", choices=channels
        )
    return Route(
        provider=model.provider_id,
        model=model.name,
        channel=version.channel,
        upstream_id=version.upstream_id,
        queue=queue_name(model.provider_id, version.channel),
        status=version.status,
        sunset_at=version.sunset_at,
    )
