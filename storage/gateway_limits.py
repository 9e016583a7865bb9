"""Gateway-wide limits per model (`yandexgpt`) or version (`yandexgpt:rc`), for all keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.limits import Limit
from storage.models import GatewayLimit


def model_key(model_id: str) -> str:
    """Stored lower-cased, as limits are matched (`Limit.applies_to`)."""
    return model_id.lower()


def put_gateway_limit(session: Session, model_id: str, limit: Limit) -> GatewayLimit:
    row = session.get(GatewayLimit, model_key(model_id))
    figures = limit.model_dump(exclude={"model"}, exclude_none=True)
    if row is None:
        row = GatewayLimit(model=model_key(model_id), limit=figures)
        session.add(row)
    else:
        row.limit = figures
    return row


def list_gateway_limits(session: Session) -> list[GatewayLimit]:
    return list(session.scalars(select(GatewayLimit).order_by(GatewayLimit.model)))


def delete_gateway_limit(session: Session, model_id: str) -> GatewayLimit | None:
    row = session.get(GatewayLimit, model_key(model_id))
    if row is not None:
        session.delete(row)
    return row
