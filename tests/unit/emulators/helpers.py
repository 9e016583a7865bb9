"""Request builders shared by the emulator tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import requests

from providers.emulators import gigachat
from providers.emulators.server import start_in_thread

YANDEX_KEY = "emu-yandex-key"
FOLDER = "b1gemulatorfolder"
TIMEOUT = 10


def oauth(
    url: str, key: str = gigachat.DEFAULT_KEY, scope: str = "GIGACHAT_API_PERS", **headers
) -> requests.Response:
    sent = {"Authorization": f"Basic {key}", "RqUID": str(uuid.uuid4()), **headers}
    return requests.post(
        f"{url}/api/v2/oauth", data={"scope": scope}, headers=sent, timeout=TIMEOUT
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


API_KEY_HEADERS = {"Authorization": f"Api-Key {YANDEX_KEY}"}


def yandex_body(text: str = "Привет, как дела?", model: str = "yandexgpt-lite", **options):
    branch = options.pop("branch", "latest")
    return {
        "modelUri": f"gpt://{FOLDER}/{model}/{branch}",
        "completionOptions": {"temperature": 0.3, **options},
        "messages": [{"role": "system", "text": "Ты помощник."}, {"role": "user", "text": text}],
    }


def giga_body(text: str = "Привет, как дела?", model: str = "GigaChat", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve an app built with a non-default config for the length of a test."""
    server = start_in_thread(app)
    try:
        yield server.url
    finally:
        server.stop()


def add_fault(url: str, **rule) -> requests.Response:
    response = requests.post(f"{url}/_emulator/faults", json=rule, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response


def stats(url: str) -> dict:
    return requests.get(f"{url}/_emulator/stats", timeout=TIMEOUT).json()
