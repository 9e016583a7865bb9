"""`/v1/embeddings` end to end: the official `openai` and `gigachat` SDKs against llmgw, llmgw
against both emulators over HTTP (YandexGPT `textEmbedding`, GigaChat `/embeddings`), with
admission, usage and the call's record as a finished job."""

from __future__ import annotations

import math

import openai
import pytest
import requests
from gigachat import GigaChat

from storage.apikeys import create_api_key
from tests.integration.conftest import MASTER_KEY

pytestmark = pytest.mark.integration


def key_with(runtime, limits: list[dict]) -> str:
    with runtime.sessions() as session:
        _, plaintext = create_api_key(session, "embeddings-it", limits=limits)
        session.commit()
    return plaintext


@pytest.fixture()
def oai(live_api):
    return openai.OpenAI(api_key=MASTER_KEY, base_url=f"{live_api}/v1", max_retries=0, timeout=20)


@pytest.mark.parametrize(
    ("model", "dimension"),
    [("text-search-doc", 256), ("text-search-query:latest", 256), ("Embeddings", 1024)],
)
def test_openai_sdk_embeds_a_list_on_both_providers(oai, model, dimension):
    texts = ["Мама мыла раму", "The cat sat on the mat", "Мама мыла раму"]
    answer = oai.embeddings.create(model=model, input=texts)  # the SDK asks for base64
    vectors = [item.embedding for item in answer.data]
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert {len(v) for v in vectors} == {dimension}
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert math.isclose(sum(x * x for x in vectors[1]), 1.0, rel_tol=1e-3)  # unit vectors
    assert answer.model == model
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
    floats = oai.embeddings.create(model=model, input=texts[1], encoding_format="float")
    exact = floats.data[0].embedding  # base64 carries float32: equal to ~7 digits
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(exact, vectors[1], strict=True))


def test_the_call_is_recorded_as_a_job_and_counted_in_usage(live_api, runtime):
    auth = {"Authorization": f"Bearer {key_with(runtime, [])}"}
    response = requests.post(
        f"{live_api}/v1/embeddings",
        json={"model": "text-search-doc", "input": ["один", "два"]},
        headers=auth,
        timeout=20,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert response.headers["x-llmgw-model"] == "text-search-doc:latest"
    assert response.headers["x-llmgw-provider"] == "yandexgpt"
    assert response.headers["x-llmgw-model-version"] == "06.12.2023"
    job = requests.get(
        f"{live_api}/v1/jobs/{response.headers['x-llmgw-job-id']}", headers=auth, timeout=10
    ).json()
    assert job["status"] == "succeeded" and job["result"] is None
    assert [a["outcome"] for a in job["attempts"]] == ["succeeded"]
    usage = requests.get(f"{live_api}/v1/usage", headers=auth, timeout=10).json()["data"]
    assert [{k: v for k, v in row.items() if v is not None} for row in usage] == [
        {
            "model": "text-search-doc",
            "channel": "latest",
            "requests": 1,
            "prompt_tokens": body["usage"]["prompt_tokens"],
            "completion_tokens": 0,
            "total_tokens": body["usage"]["prompt_tokens"],
        }
    ]


def test_admission_applies_like_chat(live_api, runtime):
    auth = {"Authorization": f"Bearer {key_with(runtime, [{'requests_per_minute': 1}])}"}
    body = {"model": "Embeddings", "input": "раз"}
    first = requests.post(f"{live_api}/v1/embeddings", json=body, headers=auth, timeout=20)
    second = requests.post(f"{live_api}/v1/embeddings", json=body, headers=auth, timeout=20)
    assert first.status_code == 200, first.text
    assert second.status_code == 429 and second.json()["error"]["code"] == "rate_limited"
    assert int(second.headers["Retry-After"]) >= 1


def test_a_provider_refusal_is_a_client_error_not_a_500(oai):
    long_text = "слово " * 5000  # past text-search-doc's 2,048 tokens
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model="text-search-doc", input=long_text, encoding_format="float")
    assert caught.value.status_code == 400


def test_a_provider_429_reaches_the_client_with_its_retry_after(oai, emulators):
    """Embeddings are not paced (docs/limits.md): a provider refusal comes back as the 429 it
    was, with the provider's `Retry-After`, not as a 5xx."""
    faults = f"{emulators['yandexgpt']}/_emulator/faults"
    rule = {"kind": "http_429_retry_after", "path": "/foundationModels/v1/textEmbedding"}
    added = requests.post(faults, json={**rule, "retry_after": 7}, timeout=5)
    assert added.status_code == 201, added.text
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            oai.embeddings.create(model="text-search-query", input="hi", encoding_format="float")
    finally:
        requests.delete(faults, timeout=5)
    assert (caught.value.code, caught.value.type) == ("rate_limited", "rate_limit_error")
    assert caught.value.response.headers["Retry-After"] == "7"


def test_gigachat_sdk_embeddings_against_llmgw(live_api):
    with GigaChat(base_url=f"{live_api}/v1", access_token=MASTER_KEY, timeout=20) as sdk:
        answer = sdk.embeddings(["Привет", "Пока"], model="Embeddings")
    assert [item.index for item in answer.data] == [0, 1]
    assert {len(item.embedding) for item in answer.data} == {1024}
    assert answer.model == "Embeddings"
