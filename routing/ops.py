"""Catalogue operations. Each one changes the channel rows, writes one audited
`CatalogueEvent` (who, when, what, the model's state before and after) and leaves the commit
to `apply_op`, which then bumps the cache version so every process sees the change.

- promote: rc → latest; the old latest becomes `deprecated` with a sunset `deprecation_days`
  ahead (model policy, else the default); the old deprecated version leaves service.
- rollback: restore the state from before the model's last promote.
- deprecate / retire: a channel or every channel of a model.
- pin: point a channel at a concrete version (registering it with `upstream_id` if new).
- set_policy: sunset policy (redirect | reject), successor, deprecation days, equivalents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy import desc, func, select
from sqlalchemy.orm import Session, sessionmaker

from routing.cache import bump_catalogue_version
from routing.errors import CatalogueConflict, UnknownChannel, UnknownModel, UnknownVersion
from routing.model_id import CHANNELS, parse_model_id
from storage.models import (
    CatalogueEvent,
    KeyRoutingPolicy,
    Model,
    ModelAlias,
    ModelPolicy,
    ModelRelease,
    ModelVersion,
    utcnow,
)

log = logging.getLogger(__name__)
DEFAULT_DEPRECATION_DAYS = 30
DEFAULT_PRIORITY = {"latest": 10, "rc": 20, "deprecated": 30}
SUNSET_POLICIES = ("redirect", "reject")
_DATES = ("released_at", "deprecated_at", "sunset_at")


def apply_op(
    sessions: sessionmaker[Session],
    client: redis.Redis | None,
    op: Callable[..., CatalogueEvent],
    *args: Any,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run one operation in its own transaction, commit, then invalidate every cache."""
    with sessions() as session:
        event = op(session, *args, **kwargs)
        session.commit()
        view = event_view(event)
    view["cache_invalidated"] = False
    if client is not None:
        try:
            bump_catalogue_version(client)
            view["cache_invalidated"] = True
        except redis.RedisError:
            log.warning("catalogue changed but the cache version could not be bumped")
    return view


def find_model(session: Session, name: str) -> Model:
    model = session.scalar(select(Model).where(func.lower(Model.name) == name.lower()))
    if model is None:
        alias = session.get(ModelAlias, name.lower())
        model = session.get(Model, alias.model_id) if alias else None
    if model is None:
        names = sorted(session.scalars(select(Model.name)))
        raise UnknownModel(f"Model {name!r} does not exist.", choices=names)
    return model


def promote(
    session: Session,
    name: str,
    *,
    actor: str,
    deprecation_days: int | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> CatalogueEvent:
    now, model = now or utcnow(), find_model(session, name)
    rc, latest = _live_channel(model, "rc"), _live_channel(model, "latest")
    if rc.upstream_id == latest.upstream_id and _serving(session, model, "rc") is None:
        raise CatalogueConflict(f"{model.name}:rc already is {model.name}:latest.")
    before = model_state(session, model)
    days = deprecation_days or _policy(session, model).deprecation_days or DEFAULT_DEPRECATION_DAYS
    deprecated = _channel_row(session, model, "deprecated")
    _copy(latest, deprecated, status="deprecated", deprecated_at=now)
    deprecated.sunset_at = now + timedelta(days=days)
    _copy(rc, latest, status="active", released_at=now)
    _shift_releases(session, model)
    return _audit(session, model, "promote", actor, reason, before, now)


def rollback(
    session: Session, name: str, *, actor: str, reason: str | None = None
) -> CatalogueEvent:
    model = find_model(session, name)
    last = session.scalar(
        select(CatalogueEvent)
        .where(CatalogueEvent.model == model.name, CatalogueEvent.action == "promote")
        .order_by(desc(CatalogueEvent.id))
    )
    if last is None:
        raise CatalogueConflict(f"{model.name} has never been promoted; nothing to roll back.")
    before = model_state(session, model)
    if before["channels"] != last.after["channels"]:
        raise CatalogueConflict(
            f"{model.name} changed after its last promote (event {last.id}); pin instead."
        )
    _restore(session, model, last.before)
    return _audit(session, model, "rollback", actor, reason or f"undo event {last.id}", before)


def deprecate(
    session: Session,
    target: str,
    *,
    actor: str,
    sunset_at: datetime | None = None,
    successor: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> CatalogueEvent:
    now = now or utcnow()
    model, rows = _targets(session, target)
    before = model_state(session, model)
    days = _policy(session, model).deprecation_days or DEFAULT_DEPRECATION_DAYS
    for row in rows:
        row.status = "deprecated"
        row.deprecated_at = row.deprecated_at or now
        row.sunset_at = sunset_at or row.sunset_at or now + timedelta(days=days)
    if successor:
        _check_model_id(session, successor)
        _policy(session, model).successor = successor
    return _audit(session, model, "deprecate", actor, reason, before, now)


def retire(
    session: Session,
    target: str,
    *,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> CatalogueEvent:
    now = now or utcnow()
    model, rows = _targets(session, target)
    before = model_state(session, model)
    for row in rows:
        row.status = "retired"
        row.sunset_at = min(row.sunset_at or now, now)
    return _audit(session, model, "retire", actor, reason, before, now)


def pin(
    session: Session,
    name: str,
    channel: str,
    version: str,
    *,
    actor: str,
    upstream_id: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> CatalogueEvent:
    now, model = now or utcnow(), find_model(session, name)
    if channel not in CHANNELS:
        raise UnknownChannel(f"No channel {channel!r}.", choices=list(CHANNELS))
    before = model_state(session, model)
    release = _release(session, model, version, upstream_id, now)
    previous = _serving(session, model, channel)
    if previous is not None and previous is not release:
        previous.channel = None
    release.channel = channel
    row = _channel_row(session, model, channel)
    row.upstream_id = release.upstream_id
    row.status = "deprecated" if channel == "deprecated" else "active"
    if channel != "deprecated":
        row.deprecated_at = row.sunset_at = None
    return _audit(session, model, "pin", actor, reason, before, now)


def set_policy(
    session: Session,
    name: str,
    *,
    actor: str,
    sunset_policy: str | None = None,
    successor: str | None = None,
    deprecation_days: int | None = None,
    equivalents: list[str] | None = None,
    reason: str | None = None,
) -> CatalogueEvent:
    model = find_model(session, name)
    if sunset_policy is not None and sunset_policy not in SUNSET_POLICIES:
        raise CatalogueConflict(
            f"Unknown sunset policy {sunset_policy!r}.", choices=list(SUNSET_POLICIES)
        )
    before, policy = model_state(session, model), _policy(session, model)
    if successor:
        _check_model_id(session, successor)
    for name_, value in (
        ("sunset_policy", sunset_policy),
        ("successor", successor),
        ("deprecation_days", deprecation_days),
    ):
        if value is not None:
            setattr(policy, name_, value)
    if equivalents is not None:
        policy.equivalents = [find_model(session, e).name for e in equivalents]
    return _audit(session, model, "policy", actor, reason, before)


def set_key_policy(
    session: Session,
    key_id: str,
    *,
    actor: str,
    cross_provider: bool | None,
    reason: str | None = None,
) -> CatalogueEvent:
    """True/False: the key's requests may/may not fall back across providers; None: ask each
    request. Audited under the model name `key:<id>`."""
    row = session.get(KeyRoutingPolicy, key_id) or KeyRoutingPolicy(key_id=key_id)
    before = {"cross_provider": row.cross_provider}
    row.cross_provider = cross_provider
    session.add(row)
    event = CatalogueEvent(
        actor=actor,
        action="key_policy",
        model=f"key:{key_id}",
        reason=reason,
        before=before,
        after={"cross_provider": cross_provider},
    )
    session.add(event)
    session.flush()
    return event


def model_state(session: Session, model: Model) -> dict[str, Any]:
    """The audited picture of a model: its channel rows, releases and policy, as JSON."""
    session.flush()
    session.refresh(model)
    releases = session.scalars(
        select(ModelRelease).where(ModelRelease.model_id == model.id).order_by(ModelRelease.id)
    )
    policy = session.get(ModelPolicy, model.id)
    return {
        "channels": [_row_json(v) for v in sorted(model.versions, key=lambda v: v.channel)],
        "releases": [
            {"version": r.version, "upstream_id": r.upstream_id, "channel": r.channel}
            for r in releases
        ],
        "policy": {
            "sunset_policy": policy.sunset_policy if policy else "redirect",
            "successor": policy.successor if policy else None,
            "deprecation_days": policy.deprecation_days if policy else None,
            "equivalents": list(policy.equivalents or []) if policy else [],
        },
    }


def event_view(event: CatalogueEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "model": event.model,
        "reason": event.reason,
        "before": event.before,
        "after": event.after,
    }


def _row_json(row: ModelVersion) -> dict[str, Any]:
    data = {
        "channel": row.channel,
        "upstream_id": row.upstream_id,
        "status": row.status,
        "priority": row.priority,
    }
    for name in _DATES:
        value = getattr(row, name)
        data[name] = value.isoformat() if value else None
    return data


def _audit(
    session: Session,
    model: Model,
    action: str,
    actor: str,
    reason: str | None,
    before: dict[str, Any],
    now: datetime | None = None,
) -> CatalogueEvent:
    event = CatalogueEvent(
        at=now or utcnow(),
        actor=actor,
        action=action,
        model=model.name,
        reason=reason,
        before=before,
        after=model_state(session, model),
    )
    session.add(event)
    session.flush()
    return event


def _live_channel(model: Model, channel: str) -> ModelVersion:
    row = next((v for v in model.versions if v.channel == channel), None)
    if row is None or row.status == "retired":
        live = [v.channel for v in model.versions if v.status != "retired"]
        raise CatalogueConflict(f"{model.name} has no live {channel!r} channel.", choices=live)
    return row


def _channel_row(session: Session, model: Model, channel: str) -> ModelVersion:
    row = next((v for v in model.versions if v.channel == channel), None)
    if row is None:
        row = ModelVersion(channel=channel, upstream_id="", priority=DEFAULT_PRIORITY[channel])
        model.versions.append(row)
        session.flush()
    return row


def _copy(src: ModelVersion, dst: ModelVersion, **overrides: Any) -> None:
    dst.upstream_id = src.upstream_id
    dst.released_at = src.released_at
    dst.deprecated_at = dst.sunset_at = None
    for name, value in overrides.items():
        setattr(dst, name, value)


def _shift_releases(session: Session, model: Model) -> None:
    moves = {"deprecated": None, "latest": "deprecated", "rc": "latest"}
    serving = {ch: _serving(session, model, ch) for ch in moves}
    for channel, release in serving.items():
        if release is not None:
            release.channel = moves[channel]


def _serving(session: Session, model: Model, channel: str) -> ModelRelease | None:
    return session.scalar(
        select(ModelRelease).where(
            ModelRelease.model_id == model.id, ModelRelease.channel == channel
        )
    )


def _release(
    session: Session, model: Model, version: str, upstream_id: str | None, now: datetime
) -> ModelRelease:
    release = session.scalar(
        select(ModelRelease).where(
            ModelRelease.model_id == model.id, ModelRelease.version == version
        )
    )
    if release is None and upstream_id is None:
        known = session.scalars(
            select(ModelRelease.version).where(ModelRelease.model_id == model.id)
        )
        raise UnknownVersion(
            f"{model.name} has no version {version!r}; pass its upstream id to register it.",
            choices=list(known),
        )
    if release is None:
        if not version[:1].isdigit():
            raise CatalogueConflict(f"A version starts with a digit, not {version!r}.")
        release = ModelRelease(model_id=model.id, version=version, upstream_id="", released_at=now)
        session.add(release)
    if upstream_id:
        release.upstream_id = upstream_id
    return release


def _targets(session: Session, target: str) -> tuple[Model, list[ModelVersion]]:
    ref = parse_model_id(target)
    model = find_model(session, ref.model)
    if ":" not in target:
        return model, [v for v in model.versions if v.status != "retired"]
    return model, [_live_channel(model, ref.channel or "")]


def _policy(session: Session, model: Model) -> ModelPolicy:
    policy = session.get(ModelPolicy, model.id)
    if policy is None:
        policy = ModelPolicy(model_id=model.id, sunset_policy="redirect", equivalents=[])
        session.add(policy)
    return policy


def _check_model_id(session: Session, model_id: str) -> None:
    ref = parse_model_id(model_id)
    model = find_model(session, ref.model)
    known = [v.channel for v in model.versions]
    if ref.channel and ref.channel not in known:
        raise UnknownChannel(f"Model {model.name!r} has no channel {ref.channel!r}.", choices=known)
    if ref.channel:
        _live_channel(model, ref.channel)


def _restore(session: Session, model: Model, state: dict[str, Any]) -> None:
    wanted = {c["channel"]: c for c in state["channels"]}
    for row in list(model.versions):
        if row.channel not in wanted:
            model.versions.remove(row)
            session.delete(row)
    for channel, data in wanted.items():
        row = _channel_row(session, model, channel)
        row.upstream_id, row.status, row.priority = (
            data["upstream_id"],
            data["status"],
            data["priority"],
        )
        for name in _DATES:
            setattr(row, name, datetime.fromisoformat(data[name]) if data[name] else None)
    channels = {r["version"]: r["channel"] for r in state["releases"]}
    for release in session.scalars(select(ModelRelease).where(ModelRelease.model_id == model.id)):
        release.channel = channels.get(release.version)
