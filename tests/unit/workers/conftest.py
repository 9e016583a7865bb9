"""The workers' unit tests run a container with a YandexGPT folder and an in-memory Redis."""

from __future__ import annotations

import fakeredis
import pytest

from llmgw.container import Container


@pytest.fixture()
def runtime(unit_settings) -> Container:
    container = Container(unit_settings.model_copy(update={"yandexgpt_folder_id": "b1gfolder"}))
    container.__dict__["redis"] = fakeredis.FakeRedis()
    return container
