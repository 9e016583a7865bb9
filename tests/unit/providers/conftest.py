"""Fixtures for adapter unit tests: configs built explicitly, and `responses` as the
transport-level fake (it replaces `HTTPAdapter.send`, so no socket is ever opened)."""

from __future__ import annotations

import socket

import pytest
import responses

from providers.config import GigaChatConfig, YandexGPTConfig

YANDEX = "https://llm.test"
YANDEX_OPS = "https://operation.test"
YANDEX_IAM = "https://iam.test"
GIGA = "https://giga.test/api/v1"
GIGA_AUTH = "https://ngw.test:9443/api/v2/oauth"
FOLDER = "b1gtestfolder"


TRANSPORT: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 7.0, "pool_size": 8}


def yandex_config(**overrides: object) -> YandexGPTConfig:
    values: dict[str, object] = {
        "base_url": YANDEX,
        "operations_url": YANDEX_OPS,
        "iam_url": YANDEX_IAM,
        "folder_id": FOLDER,
    }
    return YandexGPTConfig.model_validate(TRANSPORT | values | overrides)


def giga_config(**overrides: object) -> GigaChatConfig:
    values: dict[str, object] = {
        "base_url": GIGA,
        "auth_url": GIGA_AUTH,
        "credentials": "Z2lnYS1jbGllbnQ6Z2lnYS1zZWNyZXQ=",
    }
    return GigaChatConfig.model_validate(TRANSPORT | values | overrides)


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch):
    """Unit tests talk to fakes only: any real connection attempt fails the test."""

    def refuse(self, address):
        raise AssertionError(f"unit test tried to open a socket to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture()
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def calls_to(mock: responses.RequestsMock, url: str) -> list:
    return [c for c in mock.calls if c.request.url.split("?")[0] == url]
