"""Conformance: the official `openai` SDK talks to the YandexGPT emulator's OpenAI-compatible
surface (`/v1/chat/completions`, `/v1/models`), as it would to `llm.api.cloud.yandex.net/v1`.

The SDK sends the key as `Authorization: Bearer <key>` (the emulator takes a non-`t1.` Bearer
value as an API key, like the real service's curl examples) and `project=` as the
`OpenAI-Project` header, which carries the folder.
"""

from __future__ import annotations

import json

import openai
import pytest
import requests
from openai import OpenAI

from providers.emulators import yandexgpt
from providers.emulators.common import count_tokens
from providers.emulators.server import start_in_thread
from providers.emulators.yandex_wire import prompt_token_count

pytestmark = pytest.mark.integration

FOLDER = "b1gemulatorfolder"
MODEL = f"gpt://{FOLDER}/yandexgpt-lite/latest"
MESSAGES = [
    {"role": "system", "content": "Ты краткий помощник."},
    {"role": "user", "content": "Расскажи про квантовые компьютеры простыми словами"},
]


@pytest.fixture(scope="module")
def emulator_url():
    server = start_in_thread(yandexgpt.create_app(yandexgpt.YandexEmulatorConfig()))
    yield server.url
    server.stop()


@pytest.fixture()
def client(emulator_url):
    sdk = OpenAI(
        base_url=f"{emulator_url}/v1", api_key="emu-yandex-key", project=FOLDER, max_retries=0
    )
    yield sdk
    sdk.close()


def expected_prompt_tokens() -> int:
    """The emulator's usage rule: the `tokenizeCompletion` length of the native messages."""
    return prompt_token_count([{"role": m["role"], "text": m["content"]} for m in MESSAGES])


def test_chat_completion(client, emulator_url):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.3)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("Emulated yandexgpt-lite reply to: Расскажи про")
    usage = completion.usage
    assert usage.prompt_tokens == expected_prompt_tokens()
    assert usage.completion_tokens == count_tokens(choice.message.content) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # The SDK's `project=` reached the emulator as the folder header.
    stats = requests.get(f"{emulator_url}/_emulator/stats", timeout=5).json()
    assert stats["last_headers"].get("OpenAI-Project") == FOLDER


def test_same_prompt_same_answer(client):
    first = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    second = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content


def test_max_tokens_truncates(client):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3


def test_content_filter(client):
    messages = [{"role": "user", "content": "Tell me about FORBIDDEN-TOPIC"}]
    completion = client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].finish_reason == "content_filter"


def test_streaming_joins_to_the_full_text(client):
    full = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in with_choices)
    assert text == full.choices[0].message.content
    assert with_choices[-1].choices[0].finish_reason == "stop"
    # The real service (recorded) ends with a `choices: []` chunk carrying usage, then [DONE].
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == full.usage.prompt_tokens
    assert last.usage.completion_tokens == full.usage.completion_tokens
    assert last.usage.total_tokens == full.usage.total_tokens


def test_models_list(client):
    models = list(client.models.list())
    ids = {model.id for model in models}
    for name in ("yandexgpt-lite", "yandexgpt", "yandexgpt-32k"):
        for branch in ("latest", "rc", "deprecated"):
            assert f"gpt://{FOLDER}/{name}/{branch}" in ids
    assert all(model.object == "model" for model in models)
    assert {m.owned_by for m in models if "/yandexgpt" in m.id} == {"Yandex"}


def test_wrong_key_is_401(emulator_url):
    sdk = OpenAI(base_url=f"{emulator_url}/v1", api_key="nope", max_retries=0)
    with sdk, pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_unknown_model_and_foreign_folder(client):
    create = client.chat.completions.create
    with pytest.raises(openai.BadRequestError, match="invalid model_uri"):
        create(model=f"gpt://{FOLDER}/no-such-model/latest", messages=MESSAGES)
    with pytest.raises(openai.PermissionDeniedError):
        create(model="gpt://b1gotherfolder/yandexgpt/latest", messages=MESSAGES)


# -- Yandex's own SDK (`yandex-cloud-ml-sdk`), its HTTP `sdk.chat` surface --------------------


@pytest.fixture()
def yandex_sdk(emulator_url):
    from yandex_cloud_ml_sdk import YCloudML

    return YCloudML(
        folder_id=FOLDER,
        auth="emu-yandex-key",  # not `t1.`-shaped: the SDK sends it as `Api-Key <key>`
        service_map={"http_completions": f"{emulator_url}/v1/"},
    )


def test_yandex_sdk_chat(yandex_sdk, client):
    result = (
        yandex_sdk.chat.completions("yandexgpt-lite")
        .configure(temperature=0.3)
        .run([{"role": "system", "text": MESSAGES[0]["content"]}, MESSAGES[1]["content"]])
    )
    expected = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert result.text == expected.choices[0].message.content
    assert result.model == MODEL
    assert result.usage.input_text_tokens == expected_prompt_tokens()


def test_yandex_sdk_stream(yandex_sdk, client):
    expected = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    model = yandex_sdk.chat.completions("yandexgpt-lite")
    chunks = list(
        model.run_stream(
            [{"role": "system", "text": MESSAGES[0]["content"]}, MESSAGES[1]["content"]]
        )
    )
    texts = [chunk.text for chunk in chunks]
    # The SDK yields growing prefixes; the last ones carry the whole answer.
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert texts[-1] == expected.choices[0].message.content
    assert [c.status.name for c in chunks][-2:] == ["FINAL", "USAGE"]
    assert chunks[-1].usage.completion_tokens == expected.usage.completion_tokens


def test_stream_chunks_leave_finish_reason_out_until_the_end(emulator_url):
    """The recorded wire: no `finish_reason` key on intermediate chunks (not `null`)."""
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    headers = {"Authorization": "Api-Key emu-yandex-key"}
    with requests.post(
        f"{emulator_url}/v1/chat/completions", json=body, headers=headers, stream=True, timeout=10
    ) as response:
        lines = [x for x in response.iter_lines(decode_unicode=True) if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    choices = [chunk["choices"][0] for chunk in chunks if chunk["choices"]]
    assert len(choices) >= 3
    assert all("finish_reason" not in choice for choice in choices[:-1])
    assert choices[-1]["finish_reason"] == "stop"
