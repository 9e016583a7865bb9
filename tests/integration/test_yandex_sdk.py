"""Drop-in: Yandex's own SDK (`yandex-cloud-ml-sdk`) pointed at llmgw.

The SDK's `sdk.chat.completions` speaks YandexGPT's OpenAI-compatible HTTP surface: `POST
<http_completions>/chat/completions` with `model: gpt://<folder>/<model>/<branch>` and
`Authorization: Api-Key <key>`; `service_map={"http_completions": "<llmgw>/v1/"}` sends it to
llmgw. (`sdk.models.completions` is gRPC only and is not served; see docs/api.md.)
"""

from __future__ import annotations

import json

import httpx
import pytest
import requests

from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration
FOLDER = "b1gsomeonesfolder"  # any folder: llmgw serves its catalogue, not a folder
QUESTION = "Расскажи коротко, что такое шлюз для языковых моделей"


@pytest.fixture()
def yandex_sdk(live_api, worker):
    from yandex_cloud_ml_sdk import YCloudML

    return YCloudML(
        folder_id=FOLDER, auth=MASTER_KEY, service_map={"http_completions": f"{live_api}/v1/"}
    )


@pytest.fixture()
def openai_sdk(live_api, worker):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_api}/v1", api_key=MASTER_KEY, max_retries=0)
    yield client
    client.close()


def job_route(client, auth, completion_id: str) -> dict:
    job = client.get(f"/v1/jobs/{completion_id.removeprefix('chatcmpl-')}", headers=auth)
    assert job.status_code == 200, job.get_data(as_text=True)
    return job.get_json()["route"]


def test_chat(yandex_sdk, openai_sdk, client, auth):
    result = yandex_sdk.chat.completions("yandexgpt-lite").run(QUESTION)
    expected = openai_sdk.chat.completions.create(
        model="yandexgpt-lite:latest", messages=[{"role": "user", "content": QUESTION}]
    )
    assert result.text == expected.choices[0].message.content
    assert result.status.name == "FINAL"
    assert result.usage.completion_tokens == expected.usage.completion_tokens > 0
    route = job_route(client, auth, result.id)
    assert (route["provider"], route["model"], route["channel"]) == (
        "yandexgpt",
        "yandexgpt-lite",
        "latest",
    )


def test_branch_is_the_channel(yandex_sdk, client, auth):
    result = yandex_sdk.chat.completions("yandexgpt", model_version="rc").run(QUESTION)
    assert result.text
    route = job_route(client, auth, result.id)
    assert (route["model"], route["channel"]) == ("yandexgpt", "rc")


def test_stream(yandex_sdk, openai_sdk):
    model = yandex_sdk.chat.completions("yandexgpt-lite").configure(temperature=0.2)
    chunks = list(model.run_stream(QUESTION))
    full = openai_sdk.chat.completions.create(
        model="yandexgpt-lite", messages=[{"role": "user", "content": QUESTION}], temperature=0.2
    )
    texts = [chunk.text for chunk in chunks]
    assert len(texts) >= 3
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert texts[-1] == full.choices[0].message.content
    assert [chunk.status.name for chunk in chunks][-2:] == ["FINAL", "USAGE"]
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_unknown_model_is_a_404(yandex_sdk):
    with pytest.raises(httpx.HTTPStatusError) as caught:
        yandex_sdk.chat.completions("no-such-model").run(QUESTION)
    response = caught.value.response
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert response.json()["error"]["param"] == "model"


def test_a_wrong_key_is_a_401(live_api):
    from yandex_cloud_ml_sdk import YCloudML

    sdk = YCloudML(
        folder_id=FOLDER, auth="wrong", service_map={"http_completions": f"{live_api}/v1/"}
    )
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sdk.chat.completions("yandexgpt-lite").run(QUESTION)
    assert caught.value.response.status_code == 401


def stream_choices(live_api: str, model: str) -> list[dict]:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    headers = {"Authorization": f"Api-Key {MASTER_KEY}"}
    with requests.post(
        f"{live_api}/v1/chat/completions", json=body, headers=headers, stream=True, timeout=30
    ) as response:
        assert response.status_code == 200
        lines = [x for x in response.iter_lines(decode_unicode=True) if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    return [chunk["choices"][0] for chunk in chunks if chunk["choices"]]


def test_wire_follows_the_caller(live_api, worker):
    """A `gpt://` URI gets Yandex's chunks (no `finish_reason` key before the end); an llmgw id
    gets OpenAI's (`finish_reason: null`)."""
    yandex = stream_choices(live_api, f"gpt://{FOLDER}/yandexgpt-lite/latest")
    assert all("finish_reason" not in choice for choice in yandex[:-1])
    assert yandex[-1]["finish_reason"] == "stop"
    openai_style = stream_choices(live_api, "yandexgpt-lite:latest")
    assert all(choice["finish_reason"] is None for choice in openai_style[:-1])
    assert openai_style[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("uri", "status", "code"),
    [
        ("gpt://f/yandexgpt-lite/nightly", 404, "channel_not_found"),
        ("gpt://f/yandexgpt-lite/latest@tuned", 400, "invalid_model_id"),
        ("gpt://yandexgpt-lite", 400, "invalid_model_id"),
    ],
)
def test_bad_uris(client, auth, uri, status, code):
    body = {"model": uri, "messages": [{"role": "user", "content": QUESTION}]}
    response = client.post("/v1/chat/completions", json=body, headers=auth)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


# -- YandexGPT's native REST wire: POST /foundationModels/v1/completion -----------------------


def native(live_api: str, body: dict, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Api-Key {MASTER_KEY}"}
    return requests.post(
        f"{live_api}/foundationModels/v1/completion",
        json=body,
        headers=headers,
        timeout=30,
        **kwargs,
    )


NATIVE = {
    "modelUri": f"gpt://{FOLDER}/yandexgpt-lite/latest",
    "completionOptions": {"stream": False, "temperature": 0.2, "maxTokens": "500"},
    "messages": [
        {"role": "system", "text": "Ты краткий помощник."},
        {"role": "user", "text": QUESTION},
    ],
}


def test_native_completion(live_api, openai_sdk, client, auth):
    response = native(live_api, NATIVE)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    alternative = result["alternatives"][0]
    assert alternative["status"] == "ALTERNATIVE_STATUS_FINAL"
    assert alternative["message"]["role"] == "assistant"
    expected = openai_sdk.chat.completions.create(
        model="yandexgpt-lite:latest",
        messages=[
            {"role": "system", "content": "Ты краткий помощник."},
            {"role": "user", "content": QUESTION},
        ],
        temperature=0.2,
    )
    assert alternative["message"]["text"] == expected.choices[0].message.content
    usage = result["usage"]
    assert all(isinstance(value, str) for value in usage.values())  # int64 as strings
    assert int(usage["totalTokens"]) == int(usage["inputTextTokens"]) + int(
        usage["completionTokens"]
    )
    assert int(usage["completionTokens"]) == expected.usage.completion_tokens
    assert result["modelVersion"] == response.headers["x-llmgw-model-version"]
    job = client.get(f"/v1/jobs/{response.headers['x-llmgw-job-id']}", headers=auth).get_json()
    assert (job["route"]["model"], job["route"]["channel"]) == ("yandexgpt-lite", "latest")


def test_native_truncation(live_api):
    body = {**NATIVE, "completionOptions": {"maxTokens": 3}}
    result = native(live_api, body).json()["result"]
    assert result["alternatives"][0]["status"] == "ALTERNATIVE_STATUS_TRUNCATED_FINAL"
    assert result["usage"]["completionTokens"] == "3"


def test_native_stream_is_cumulative_lines(live_api):
    full = native(live_api, NATIVE).json()["result"]
    body = {**NATIVE, "completionOptions": {**NATIVE["completionOptions"], "stream": True}}
    with native(live_api, body, stream=True) as response:
        assert response.status_code == 200
        lines = [json.loads(x) for x in response.iter_lines(decode_unicode=True) if x]
    texts = [line["result"]["alternatives"][0]["message"]["text"] for line in lines]
    statuses = [line["result"]["alternatives"][0]["status"] for line in lines]
    assert len(lines) >= 3
    assert set(statuses[:-1]) == {"ALTERNATIVE_STATUS_PARTIAL"}
    assert statuses[-1] == "ALTERNATIVE_STATUS_FINAL"
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert texts[-1] == full["alternatives"][0]["message"]["text"]
    assert lines[-1]["result"]["usage"] == full["usage"]


@pytest.mark.parametrize(
    ("change", "status", "code", "grpc"),
    [
        ({"modelUri": f"gpt://{FOLDER}/no-such-model/latest"}, 404, "model_not_found", 5),
        ({"modelUri": f"gpt://{FOLDER}/yandexgpt-lite/nightly"}, 404, "channel_not_found", 5),
        ({"modelUri": "gpt://bad"}, 400, "invalid_model_id", 3),
        (
            {"tools": [{"function": {"name": "f", "parameters": {}}}]},
            400,
            "unsupported_parameter",
            3,
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request", 3),
    ],
)
def test_native_errors_carry_both_envelopes(live_api, change, status, code, grpc):
    response = native(live_api, {**NATIVE, **change})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["grpcCode"], error["httpCode"]) == (code, grpc, status)
    assert error["message"] and error["httpStatus"] and error["details"] == []
    assert "type" in error and "param" in error


def test_native_needs_a_key(live_api):
    response = requests.post(f"{live_api}/foundationModels/v1/completion", json=NATIVE, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["grpcCode"] == 16
