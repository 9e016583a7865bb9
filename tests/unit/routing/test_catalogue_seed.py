"""`llmgw models seed` on an existing database: new catalogue models arrive, nothing is
overwritten, and every version gets the `released_at` that `/v1/models` shows as `created`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from routing.catalogue import seed_catalogue
from storage.models import Model, ModelAlias, ModelPolicy, ModelRelease, ModelVersion


def _drop_model(session, name: str) -> None:
    model = session.scalar(select(Model).where(Model.name == name))
    session.execute(delete(ModelVersion).where(ModelVersion.model_id == model.id))
    session.execute(delete(ModelRelease).where(ModelRelease.model_id == model.id))
    session.execute(delete(ModelAlias).where(ModelAlias.model_id == model.id))
    session.execute(delete(ModelPolicy).where(ModelPolicy.model_id == model.id))
    session.execute(delete(Model).where(Model.id == model.id))


def test_seed_adds_new_catalogue_models_to_an_older_database(unit_runtime):
    with unit_runtime.sessions() as session:
        _drop_model(session, "GigaChat-2-Max")
        _drop_model(session, "text-search-doc")
        session.execute(update(ModelVersion).values(released_at=None))
        session.commit()
        added = seed_catalogue(session)
        session.commit()
        assert added >= 2 + 3  # two models, their three versions, their releases and policies
        models = {m.name: m for m in session.scalars(select(Model))}
        assert models["GigaChat-2-Max"].context_window == 131072
        assert {v.channel: v.upstream_id for v in models["GigaChat-2-Max"].versions} == {
            "latest": "GigaChat-2-Max",
            "rc": "GigaChat-2-Max-preview",
        }
        assert models["text-search-doc"].versions[0].capabilities == ["embeddings"]
        missing = session.scalar(
            select(func.count()).select_from(ModelVersion).where(ModelVersion.released_at.is_(None))
        )
        assert missing == 0
        rc = next(v for v in models["yandexgpt"].versions if v.channel == "rc")
        assert rc.released_at == datetime(2025, 5, 22)
        assert seed_catalogue(session) == 0  # a second run adds nothing


def test_yandexgpt_32k_has_concrete_versions_one_release_row(unit_runtime):
    with unit_runtime.sessions() as session:
        model = session.scalar(select(Model).where(Model.name == "yandexgpt-32k"))
        releases = session.scalars(
            select(ModelRelease).where(ModelRelease.model_id == model.id)
        ).all()
    assert [(r.version, r.channel) for r in releases] == [("07.03.2024", "latest")]
