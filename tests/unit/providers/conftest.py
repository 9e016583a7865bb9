"""Fixtures for adapter unit tests: settings passed explicitly, and `responses` as the
transport-level fake (it replaces `HTTPAdapter.send`, so no socket is ever opened)."""

from __future__ import annotations

import os
import socket

import pytest
import responses

from llmgw.settings import Settings

YANDEX = "https://llm.test"
YANDEX_OPS = "https://operation.test"
YANDEX_IAM = "https://iam.test"
GIGA = "https://giga.test/api/v1"
GIGA_AUTH = "https://ngw.test:9443/api/v2/oauth"
FOLDER = "b1gtestfolder"


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "yandexgpt_base_url": YANDEX,
        "yandexgpt_operations_url": YANDEX_OPS,
        "yandexgpt_iam_url": YANDEX_IAM,
        "yandexgpt_folder_id": FOLDER,
        "gigachat_base_url": GIGA,
        "gigachat_auth_url": GIGA_AUTH,
        "gigachat_credentials": "Z2lnYS1jbGllbnQ6Z2lnYS1zZWNyZXQ=",
        "provider_connect_timeout": 2.0,
        "provider_read_timeout": 7.0,
        "worker_concurrency": 8,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_llmgw_env(monkeypatch):
    """Settings must come from the test, not from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("LLMGW_"):
            monkeypatch.delenv(name)


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
