"""Capabilities per catalogue version and pricing per model: names, seeding, migration, views."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from routing.capabilities import DEFAULT_CAPABILITIES, missing, normalize
from routing.snapshot import Pricing
from storage import migrate
from storage.db import make_engine


def test_normalize_orders_names_and_defaults_to_chat_and_stream():
    assert normalize(None) == DEFAULT_CAPABILITIES == ("chat", "stream")
    assert normalize(["tools", "chat", "tools"]) == ("chat", "tools")
    with pytest.raises(ValueError, match="vision"):
        normalize(["chat", "vision"])


def test_missing_names_what_a_version_lacks():
    assert missing(("chat", "stream"), ("tools", "chat", "json_schema")) == ("tools", "json_schema")
    assert missing(("chat", "tools"), ("chat",)) == ()


def test_pricing_cost_is_per_thousand_tokens():
    assert Pricing("RUB", 1.2, 2.4).cost(500, 250) == pytest.approx(0.6 + 0.6)


def test_the_seeded_catalogue_carries_capabilities_per_version(unit_runtime):
    catalogue = unit_runtime.resolver.catalogue()
    yandex = catalogue.find("yandexgpt")
    assert "tools" in yandex.channel("latest").capabilities
    assert yandex.channel("deprecated").capabilities == ("chat", "stream")  # 23.10.2024
    giga = catalogue.find("GigaChat")
    assert "tools" in giga.channel("rc").capabilities
    assert "json_schema" not in giga.channel("rc").capabilities
    assert yandex.pricing == Pricing("RUB", 1.2, 1.2)


def test_the_models_api_shows_capabilities_and_pricing(unit_client, user_auth):
    body = unit_client.get("/v1/models/yandexgpt-lite", headers=user_auth).get_json()
    channels = {c["channel"]: c for c in body["channels"]}
    assert channels["latest"]["capabilities"] == [
        "chat",
        "stream",
        "tools",
        "json_object",
        "json_schema",
    ]
    assert channels["deprecated"]["capabilities"] == ["chat", "stream"]
    assert body["pricing"] == {"currency": "RUB", "prompt_per_1k": 0.2, "completion_per_1k": 0.2}


def test_revision_0007_fills_an_existing_catalogue_and_leaves_unknown_rows_null(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate.upgrade(url, "0006")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO providers (id, display_name) VALUES ('gigachat', 'G')"))
        for model_id, name in ((1, "GigaChat"), (2, "MyOwnModel")):
            conn.execute(
                text(
                    "INSERT INTO models (id, name, provider_id, family, context_window) "
                    "VALUES (:id, :name, 'gigachat', 'gigachat', 32768)"
                ),
                {"id": model_id, "name": name},
            )
            conn.execute(
                text(
                    "INSERT INTO model_versions (model_id, channel, upstream_id, status, priority) "
                    "VALUES (:id, 'latest', :name, 'active', 10)"
                ),
                {"id": model_id, "name": name},
            )
    migrate.upgrade(url)
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "SELECT m.name, v.capabilities FROM model_versions v "
                    "JOIN models m ON m.id = v.model_id"
                )
            ).all()
        )
        prices = dict(conn.execute(text("SELECT name, pricing FROM models")).all())
    assert rows["MyOwnModel"] is None
    assert "tools" in rows["GigaChat"]
    assert prices["MyOwnModel"] is None and '"RUB"' in prices["GigaChat"]
