"""An immutable, serializable snapshot of the catalogue: what resolution and planning read.

Loading it costs a few queries; `routing.cache` keeps it in Redis and in-process so a
request resolves against memory. It is plain data (no ORM objects), safe to share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from routing.capabilities import DEFAULT_CAPABILITIES, normalize
from routing.errors import UnknownModel
from storage.models import KeyRoutingPolicy, Model, ModelAlias, ModelPolicy, ModelRelease

DATE_FIELDS = ("released_at", "deprecated_at", "sunset_at")


@dataclass(frozen=True)
class VersionEntry:
    channel: str
    upstream_id: str
    status: str
    priority: int
    version: str | None = None
    released_at: datetime | None = None
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES

    def past_sunset(self, now: datetime) -> bool:
        return self.status == "retired" or (self.sunset_at is not None and self.sunset_at <= now)


@dataclass(frozen=True)
class ReleaseEntry:
    version: str
    upstream_id: str
    channel: str | None


@dataclass(frozen=True)
class Pricing:
    """A model's list price per 1,000 tokens, in `currency` (what usage cost is computed from)."""

    currency: str
    prompt_per_1k: float
    completion_per_1k: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k
        ) / 1000


@dataclass(frozen=True)
class ModelEntry:
    name: str
    provider: str
    family: str
    context_window: int
    versions: tuple[VersionEntry, ...]
    releases: tuple[ReleaseEntry, ...] = ()
    aliases: tuple[str, ...] = ()
    sunset_policy: str = "redirect"
    successor: str | None = None
    deprecation_days: int | None = None
    equivalents: tuple[str, ...] = ()
    pricing: Pricing | None = None

    def channel(self, name: str) -> VersionEntry | None:
        return next((v for v in self.versions if v.channel == name), None)

    def release(self, version: str) -> ReleaseEntry | None:
        return next((r for r in self.releases if r.version == version), None)

    def live_channels(self) -> list[str]:
        return [v.channel for v in self.versions if v.status != "retired"]


@dataclass(frozen=True)
class Catalogue:
    models: dict[str, ModelEntry]  # by lower-cased name
    aliases: dict[str, str] = field(default_factory=dict)  # lower alias → lower name
    stamp: str = "db"  # the cache version it was loaded under
    key_policies: dict[str, bool] = field(default_factory=dict)  # key id → cross_provider

    def find(self, name: str) -> ModelEntry:
        key = name.lower()
        entry = self.models.get(self.aliases.get(key, key))
        if entry is None:
            names = sorted(m.name for m in self.models.values())
            raise UnknownModel(f"Model {name!r} does not exist.", choices=names)
        return entry

    def to_json(self) -> dict[str, Any]:
        return {
            "stamp": self.stamp,
            "models": [_model_json(m) for m in self.models.values()],
            "key_policies": self.key_policies,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalogue:
        models = [_model_from_json(m) for m in data["models"]]
        return build(models, stamp=data.get("stamp", "db"), keys=data.get("key_policies", {}))


def build(
    models: list[ModelEntry], stamp: str = "db", keys: dict[str, bool] | None = None
) -> Catalogue:
    aliases = {a.lower(): m.name.lower() for m in models for a in m.aliases}
    by_name = {m.name.lower(): m for m in models}
    return Catalogue(models=by_name, aliases=aliases, stamp=stamp, key_policies=dict(keys or {}))


def load_catalogue(session: Session, stamp: str = "db") -> Catalogue:
    models = session.scalars(select(Model).options(selectinload(Model.versions))).all()
    aliases = _group(session.execute(select(ModelAlias.model_id, ModelAlias.alias)))
    policies = {p.model_id: p for p in session.scalars(select(ModelPolicy))}
    releases: dict[int, list[ReleaseEntry]] = {}
    for r in session.scalars(select(ModelRelease).order_by(ModelRelease.id)):
        releases.setdefault(r.model_id, []).append(
            ReleaseEntry(r.version, r.upstream_id, r.channel)
        )
    entries = [
        _entry(m, aliases.get(m.id, []), policies.get(m.id), releases.get(m.id, [])) for m in models
    ]
    keys = session.execute(
        select(KeyRoutingPolicy.key_id, KeyRoutingPolicy.cross_provider).where(
            KeyRoutingPolicy.cross_provider.is_not(None)
        )
    )
    return build(entries, stamp=stamp, keys={key: bool(allowed) for key, allowed in keys})


def _group(rows) -> dict[int, list[str]]:  # noqa: ANN001 - SQLAlchemy result rows
    grouped: dict[int, list[str]] = {}
    for model_id, alias in rows:
        grouped.setdefault(model_id, []).append(alias)
    return grouped


def _entry(
    model: Model, aliases: list[str], policy: ModelPolicy | None, releases: list[ReleaseEntry]
) -> ModelEntry:
    serving = {r.channel: r.version for r in releases if r.channel}
    versions = tuple(
        VersionEntry(
            channel=v.channel,
            upstream_id=v.upstream_id,
            status=v.status,
            priority=v.priority,
            version=serving.get(v.channel),
            released_at=v.released_at,
            deprecated_at=v.deprecated_at,
            sunset_at=v.sunset_at,
            capabilities=normalize(v.capabilities),
        )
        for v in sorted(model.versions, key=lambda v: (v.priority, v.channel))
    )
    return ModelEntry(
        name=model.name,
        provider=model.provider_id,
        family=model.family,
        context_window=model.context_window,
        versions=versions,
        releases=tuple(releases),
        aliases=tuple(sorted(aliases)),
        sunset_policy=policy.sunset_policy if policy else "redirect",
        successor=policy.successor if policy else None,
        deprecation_days=policy.deprecation_days if policy else None,
        equivalents=tuple(policy.equivalents or ()) if policy else (),
        pricing=Pricing(**model.pricing) if model.pricing else None,
    )


def _model_json(model: ModelEntry) -> dict[str, Any]:
    data = asdict(model)
    for version in data["versions"]:
        for name in DATE_FIELDS:
            version[name] = version[name].isoformat() if version[name] else None
    return data


def _model_from_json(data: dict[str, Any]) -> ModelEntry:
    versions = []
    for raw in data["versions"]:
        dates = {n: datetime.fromisoformat(raw[n]) if raw[n] else None for n in DATE_FIELDS}
        capabilities = normalize(raw.get("capabilities"))
        versions.append(VersionEntry(**{**raw, **dates, "capabilities": capabilities}))
    pricing = data.get("pricing")
    return ModelEntry(
        **{
            **data,
            "pricing": Pricing(**pricing) if pricing else None,
            "versions": tuple(versions),
            "releases": tuple(ReleaseEntry(**r) for r in data["releases"]),
            "aliases": tuple(data["aliases"]),
            "equivalents": tuple(data["equivalents"]),
        }
    )
