"""Catalogue operations: state changes, policy days, conflicts, and the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from routing import ops
from routing.errors import CatalogueConflict, UnknownChannel
from routing.service import resolve
from storage.models import CatalogueEvent

NOW = datetime(2026, 12, 1, 12, 0)


def run(runtime, op, *args, **kwargs):
    with runtime.sessions() as session:
        event = op(session, *args, actor="tester", **kwargs)
        session.commit()
        return ops.event_view(event)


def channels(event, side="after"):
    return {c["channel"]: c for c in event[side]["channels"]}


def test_promote_moves_rc_to_latest_and_sunsets_the_old_latest_by_default_days(unit_runtime):
    event = run(unit_runtime, ops.promote, "yandexgpt", now=NOW)
    after = channels(event)
    assert after["latest"]["upstream_id"] == "yandexgpt/rc"
    assert after["latest"]["released_at"] == NOW.isoformat()
    assert after["deprecated"]["upstream_id"] == "yandexgpt/latest"
    assert after["deprecated"]["sunset_at"] == (NOW + timedelta(days=30)).isoformat()
    releases = {r["version"]: r["channel"] for r in event["after"]["releases"]}
    assert releases == {"22.05.2025": "latest", "09.02.2025": "deprecated", "23.10.2024": None}
    assert channels(event, "before")["latest"]["upstream_id"] == "yandexgpt/latest"


def test_promote_uses_the_models_deprecation_days_then_the_explicit_ones(unit_runtime):
    run(unit_runtime, ops.set_policy, "GigaChat", deprecation_days=10)
    event = run(unit_runtime, ops.promote, "GigaChat", now=NOW)
    assert channels(event)["deprecated"]["sunset_at"] == (NOW + timedelta(days=10)).isoformat()
    event = run(unit_runtime, ops.promote, "GigaChat-Max", deprecation_days=3, now=NOW)
    assert channels(event)["deprecated"]["sunset_at"] == (NOW + timedelta(days=3)).isoformat()


def test_promoting_twice_without_a_new_rc_is_a_conflict(unit_runtime):
    run(unit_runtime, ops.promote, "GigaChat-Pro")
    with pytest.raises(CatalogueConflict):
        run(unit_runtime, ops.promote, "GigaChat-Pro")
    run(unit_runtime, ops.pin, "GigaChat-Pro", "rc", "2.2.0", upstream_id="GigaChat-Pro-preview")
    event = run(unit_runtime, ops.promote, "GigaChat-Pro")
    assert {r["version"]: r["channel"] for r in event["after"]["releases"]} == {
        "2.0.28": None,
        "2.1.0": "deprecated",
        "2.2.0": "latest",
    }


def test_promote_needs_a_live_rc(unit_runtime):
    run(unit_runtime, ops.retire, "GigaChat:rc")
    with pytest.raises(CatalogueConflict) as error:
        run(unit_runtime, ops.promote, "GigaChat")
    assert error.value.choices == ["latest"]


def test_rollback_refuses_when_the_model_changed_since(unit_runtime):
    run(unit_runtime, ops.promote, "yandexgpt")
    run(unit_runtime, ops.deprecate, "yandexgpt:rc")
    with pytest.raises(CatalogueConflict):
        run(unit_runtime, ops.rollback, "yandexgpt")


def test_pin_rolls_latest_back_to_a_known_version(unit_runtime):
    run(unit_runtime, ops.promote, "yandexgpt")
    run(unit_runtime, ops.pin, "yandexgpt", "latest", "09.02.2025", reason="regression in 22.05")
    with unit_runtime.sessions() as session:
        route = resolve(session, "yandexgpt")
    assert (route.upstream_id, route.version, route.status) == (
        "yandexgpt/latest",
        "09.02.2025",
        "active",
    )


def test_pin_rejects_unknown_channels_and_non_numeric_versions(unit_runtime):
    with pytest.raises(UnknownChannel):
        run(unit_runtime, ops.pin, "yandexgpt", "beta", "09.02.2025")
    with pytest.raises(CatalogueConflict):
        run(unit_runtime, ops.pin, "yandexgpt", "rc", "next", upstream_id="yandexgpt/rc")


def test_deprecate_whole_model_keeps_existing_dates(unit_runtime):
    event = run(unit_runtime, ops.deprecate, "yandexgpt-lite", now=NOW)
    after = channels(event)
    assert {c["status"] for c in after.values()} == {"deprecated"}
    assert after["deprecated"]["sunset_at"] == "2027-03-01T00:00:00"  # unchanged
    assert after["latest"]["sunset_at"] == (NOW + timedelta(days=30)).isoformat()
    assert after["latest"]["deprecated_at"] == NOW.isoformat()


def test_every_operation_is_audited_with_who_what_when(unit_runtime):
    run(unit_runtime, ops.promote, "yandexgpt", now=NOW, reason="evidence: compare")
    run(unit_runtime, ops.retire, "yandexgpt:deprecated", now=NOW)
    with unit_runtime.sessions() as session:
        events = session.scalars(select(CatalogueEvent).order_by(CatalogueEvent.id)).all()
    assert [(e.actor, e.action, e.model, e.at) for e in events] == [
        ("tester", "promote", "yandexgpt", NOW),
        ("tester", "retire", "yandexgpt", NOW),
    ]
    assert events[0].reason == "evidence: compare"
    assert events[1].before == events[0].after and events[1].before != events[1].after


def test_set_policy_validates_equivalents_and_successor(unit_runtime):
    event = run(unit_runtime, ops.set_policy, "yandexgpt", equivalents=["gigachat-lite"])
    assert event["after"]["policy"]["equivalents"] == ["GigaChat"]
    with pytest.raises(UnknownChannel):
        run(unit_runtime, ops.set_policy, "yandexgpt", successor="GigaChat:deprecated")
