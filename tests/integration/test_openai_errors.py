"""OpenAI's error conventions as the official `openai` SDK sees them: `type`, `param` and `code`
on its exception, the provider's `Retry-After` on a 429, and a JSON 404 for the OpenAI routes
llmgw does not serve."""

from __future__ import annotations

import json

import openai
import pytest
import requests
from openai import OpenAI

from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration
MESSAGES = [{"role": "user", "content": "Привет"}]


@pytest.fixture()
def sdk(live_api):
    client = OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)
    yield client
    client.close()


@pytest.fixture()
def yandex_faults(emulators):
    url = emulators["yandexgpt"]

    def add(**rule) -> None:
        response = requests.post(f"{url}/_emulator/faults", json=rule, timeout=5)
        assert response.status_code == 201, response.text

    yield add
    requests.delete(f"{url}/_emulator/faults", timeout=5)


def test_invalid_field(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="yandexgpt-lite", messages=MESSAGES, temperature=9)
    error = caught.value
    assert (error.type, error.param, error.code) == (
        "invalid_request_error",
        "temperature",
        "invalid_request",
    )


def test_unknown_model(sdk):
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = caught.value
    assert (error.type, error.param, error.code) == ("not_found_error", "model", "model_not_found")


def test_wrong_key(live_api):
    with (
        OpenAI(base_url=f"{live_api}/v1", api_key="wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.models.list()
    assert (caught.value.type, caught.value.code) == ("authentication_error", "invalid_api_key")


def test_legacy_completions_route_is_a_json_404(sdk):
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.completions.create(model="yandexgpt-lite", prompt="Привет")
    error = caught.value
    assert (error.type, error.code) == ("not_found_error", "unknown_route")
    assert "/v1/completions" in error.message and "/v1/chat/completions" in error.message


def test_provider_retry_after_reaches_the_client(worker, sdk, yandex_faults):
    """Every call of every candidate is refused with `Retry-After: 1`: the job fails
    rate-limited and the 429 carries the provider's value."""
    yandex_faults(kind="http_429_retry_after", model="yandexgpt-lite", retry_after=1)
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="yandexgpt-lite", messages=MESSAGES)
    error = caught.value
    assert (error.type, error.code) == ("rate_limit_error", "rate_limited")
    assert error.response.headers["Retry-After"] == "1"


def test_a_cut_stream_ends_in_the_error_shape(worker, sdk, yandex_faults):
    yandex_faults(kind="stream_cut", model="yandexgpt-lite")
    stream = sdk.chat.completions.create(model="yandexgpt-lite", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    body = caught.value.body
    assert (body["code"], body["type"], body["param"]) == (
        "stream_interrupted",
        "server_error",
        None,
    )
    assert body["job_id"]


def test_a_cut_native_stream_ends_in_an_error_line(worker, live_api, yandex_faults):
    yandex_faults(kind="stream_cut", model="yandexgpt-lite")
    body = {
        "modelUri": "gpt://any/yandexgpt-lite/latest",
        "completionOptions": {"stream": True},
        "messages": [{"role": "user", "text": "Привет"}],
    }
    with requests.post(
        f"{live_api}/foundationModels/v1/completion",
        json=body,
        headers={"Authorization": f"Api-Key {MASTER_KEY}"},
        stream=True,
        timeout=30,
    ) as response:
        lines = [json.loads(x) for x in response.iter_lines(decode_unicode=True) if x]
    assert response.status_code == 200
    assert all("result" in line for line in lines[:-1]) and len(lines) >= 2
    error = lines[-1]["error"]
    assert (error["code"], error["type"], error["grpcCode"], error["httpCode"]) == (
        "stream_interrupted",
        "server_error",
        13,
        502,
    )
