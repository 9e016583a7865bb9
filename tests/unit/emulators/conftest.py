"""Fixtures: each test gets fresh emulators on loopback, talked to over real HTTP."""

from __future__ import annotations

import pytest

from providers.emulators import gigachat, yandexgpt
from providers.emulators.server import start_in_thread
from tests.unit.emulators.helpers import oauth


@pytest.fixture()
def yandex_config() -> yandexgpt.YandexEmulatorConfig:
    return yandexgpt.YandexEmulatorConfig()


@pytest.fixture()
def yandex(yandex_config):
    server = start_in_thread(yandexgpt.create_app(yandex_config))
    yield server.url
    server.stop()


@pytest.fixture()
def giga_config() -> gigachat.GigaChatEmulatorConfig:
    return gigachat.GigaChatEmulatorConfig()


@pytest.fixture()
def giga(giga_config):
    server = start_in_thread(gigachat.create_app(giga_config))
    yield server.url
    server.stop()


@pytest.fixture()
def giga_token(giga) -> str:
    return oauth(giga).json()["access_token"]
