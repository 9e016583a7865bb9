"""The version catalogue as data: load the seed file and upsert it into the database."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.capabilities import normalize
from storage.models import Model, ModelAlias, ModelPolicy, ModelRelease, ModelVersion, Provider


def load_seed() -> dict[str, Any]:
    return json.loads(resources.files("routing").joinpath("catalogue.json").read_text("utf-8"))


def seed_catalogue(session: Session, data: dict[str, Any] | None = None) -> int:
    """Insert what the catalogue lacks, never overwriting an operator's change; count new rows.

    Capabilities and pricing are filled in where a row has none (a database from before
    revision 0007), never replaced."""
    data = data or load_seed()
    added = 0
    for spec in data["providers"]:
        if session.get(Provider, spec["id"]) is None:
            session.add(Provider(id=spec["id"], display_name=spec["display_name"]))
            added += 1
    session.flush()
    for spec in data["models"]:
        added += _seed_model(session, spec)
    return added


def _seed_model(session: Session, spec: dict[str, Any]) -> int:
    model = session.scalar(select(Model).where(Model.name == spec["name"]))
    added = 0
    if model is None:
        model = Model(
            name=spec["name"],
            provider_id=spec["provider"],
            family=spec["family"],
            context_window=spec["context_window"],
        )
        session.add(model)
        session.flush()
        added += 1
    if model.pricing is None and spec.get("pricing"):
        model.pricing = dict(spec["pricing"])
    existing = {v.channel: v for v in model.versions}
    for version in spec["versions"]:
        capabilities = list(normalize(version.get("capabilities", spec.get("capabilities"))))
        have = existing.get(version["channel"])
        if have is None:
            session.add(_version(model, version, capabilities))
            added += 1
        elif have.capabilities is None:
            have.capabilities = capabilities
    added += _seed_releases(session, model, spec["versions"])
    added += _seed_aliases(session, model, spec.get("aliases", []))
    return added + _seed_policy(session, model, spec.get("policy"))


def _version(model: Model, spec: dict[str, Any], capabilities: list[str]) -> ModelVersion:
    return ModelVersion(
        model_id=model.id,
        channel=spec["channel"],
        upstream_id=spec["upstream_id"],
        status=spec.get("status", "active"),
        priority=spec["priority"],
        deprecated_at=_date(spec.get("deprecated_at")),
        sunset_at=_date(spec.get("sunset_at")),
        capabilities=capabilities,
    )


def _date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _seed_releases(session: Session, model: Model, versions: list[dict[str, Any]]) -> int:
    known = set(
        session.scalars(select(ModelRelease.version).where(ModelRelease.model_id == model.id))
    )
    added = 0
    for spec in versions:
        if "version" in spec and spec["version"] not in known:
            release = ModelRelease(
                model_id=model.id,
                version=spec["version"],
                upstream_id=spec["upstream_id"],
                channel=spec["channel"],
            )
            session.add(release)
            added += 1
    return added


def _seed_aliases(session: Session, model: Model, aliases: list[str]) -> int:
    added = 0
    for alias in aliases:
        if session.get(ModelAlias, alias.lower()) is None:
            session.add(ModelAlias(alias=alias.lower(), model_id=model.id))
            added += 1
    return added


def _seed_policy(session: Session, model: Model, spec: dict[str, Any] | None) -> int:
    if spec is None or session.get(ModelPolicy, model.id) is not None:
        return 0
    session.add(
        ModelPolicy(
            model_id=model.id,
            sunset_policy=spec.get("sunset_policy", "redirect"),
            successor=spec.get("successor"),
            deprecation_days=spec.get("deprecation_days"),
            equivalents=list(spec.get("equivalents", [])),
        )
    )
    return 1
