"""YandexGPT emulator: auth, the sync completion wire shape, streaming, validation."""

from __future__ import annotations

import json

import requests

from providers.emulators.common import CONTENT_FILTER_TRIGGER
from tests.unit.emulators.helpers import API_KEY_HEADERS, FOLDER, TIMEOUT, yandex_body

COMPLETION = "/foundationModels/v1/completion"


def post(url: str, body: dict, headers: dict | None = None) -> requests.Response:
    sent = API_KEY_HEADERS if headers is None else headers
    return requests.post(url + COMPLETION, json=body, headers=sent, timeout=TIMEOUT)


def assert_envelope(response: requests.Response, status: int, grpc: int) -> dict:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"grpcCode", "httpCode", "message", "httpStatus", "details"}
    assert (error["httpCode"], error["grpcCode"], error["details"]) == (status, grpc, [])
    return error


def test_sync_completion_has_the_wire_shape(yandex):
    response = post(yandex, yandex_body("Расскажи про кошек и собак"))
    assert response.status_code == 200
    assert response.headers["x-request-id"] and response.headers["x-server-trace-id"]
    result = response.json()["result"]
    assert set(result) == {"alternatives", "usage", "modelVersion"}
    alternative = result["alternatives"][0]
    assert alternative["status"] == "ALTERNATIVE_STATUS_FINAL"
    assert alternative["message"]["role"] == "assistant"
    assert "Расскажи про кошек и собак" in alternative["message"]["text"]
    usage = result["usage"]
    assert all(isinstance(usage[k], str) for k in ("inputTextTokens", "completionTokens"))
    total = int(usage["inputTextTokens"]) + int(usage["completionTokens"])
    assert usage["totalTokens"] == str(total)
    assert result["modelVersion"] == "09.02.2025"


def test_answers_are_deterministic_and_depend_on_the_prompt(yandex):
    first = post(yandex, yandex_body("alpha beta")).json()["result"]
    again = post(yandex, yandex_body("alpha beta")).json()["result"]
    other = post(yandex, yandex_body("gamma delta")).json()["result"]
    assert first["alternatives"] == again["alternatives"]
    assert first["alternatives"] != other["alternatives"]


def test_branch_selects_the_version_and_omitted_branch_is_latest(yandex):
    body = yandex_body(model="yandexgpt", branch="rc")
    assert post(yandex, body).json()["result"]["modelVersion"] == "21.08.2025"
    body["modelUri"] = f"gpt://{FOLDER}/yandexgpt"
    assert post(yandex, body).json()["result"]["modelVersion"] == "09.02.2025"


def test_unknown_api_key_is_401(yandex):
    response = post(yandex, yandex_body(), {"Authorization": "Api-Key nope"})
    assert "Unknown api key" in assert_envelope(response, 401, 16)["message"]


def test_missing_authorization_is_401(yandex):
    assert_envelope(post(yandex, yandex_body(), {}), 401, 16)


def test_malformed_model_uri_is_400(yandex):
    body = {**yandex_body(), "modelUri": "yandexgpt-lite"}
    assert "Failed to parse model URI" in assert_envelope(post(yandex, body), 400, 3)["message"]


def test_unknown_model_and_branch_are_rejected(yandex):
    assert_envelope(post(yandex, yandex_body(model="gpt-9")), 400, 3)
    assert_envelope(post(yandex, yandex_body(branch="nightly")), 400, 3)


def test_folder_mismatch_is_403(yandex):
    body = {**yandex_body(), "modelUri": "gpt://b1gsomeoneelse/yandexgpt-lite/latest"}
    assert_envelope(post(yandex, body), 403, 7)


def test_x_folder_id_is_accepted_but_not_required(yandex):
    headers = {**API_KEY_HEADERS, "x-folder-id": FOLDER}
    assert post(yandex, yandex_body(), headers).status_code == 200


def test_max_tokens_as_string_or_number_truncates(yandex):
    for max_tokens in ("3", 3):
        result = post(yandex, yandex_body(maxTokens=max_tokens)).json()["result"]
        assert result["alternatives"][0]["status"] == "ALTERNATIVE_STATUS_TRUNCATED_FINAL"
        assert result["usage"]["completionTokens"] == "3"


def test_invalid_max_tokens_is_400(yandex):
    assert_envelope(post(yandex, yandex_body(maxTokens="lots")), 400, 3)
    assert_envelope(post(yandex, yandex_body(maxTokens=0)), 400, 3)


def test_trigger_phrase_gives_content_filter(yandex):
    result = post(yandex, yandex_body(f"tell me about {CONTENT_FILTER_TRIGGER}")).json()["result"]
    alternative = result["alternatives"][0]
    assert alternative["status"] == "ALTERNATIVE_STATUS_CONTENT_FILTER"
    assert CONTENT_FILTER_TRIGGER not in alternative["message"]["text"]


def test_context_overflow_is_400_with_counts(yandex):
    response = post(yandex, yandex_body("word " * 40_000, model="llama-lite"))
    message = assert_envelope(response, 400, 3)["message"]
    assert "Number of input tokens must be no more than 8192, got " in message
    assert int(message.rsplit("got ", 1)[1]) > 8192


def test_stream_is_cumulative_lines_ending_final(yandex):
    response = post(yandex, yandex_body("stream me please", stream=True))
    assert response.status_code == 200
    chunks = [json.loads(line)["result"] for line in response.text.splitlines() if line]
    texts = [c["alternatives"][0]["message"]["text"] for c in chunks]
    statuses = [c["alternatives"][0]["status"] for c in chunks]
    assert len(chunks) > 2
    assert statuses[-1] == "ALTERNATIVE_STATUS_FINAL"
    assert set(statuses[:-1]) == {"ALTERNATIVE_STATUS_PARTIAL"}
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    assert all("usage" in c and "modelVersion" in c for c in chunks)
    assert (
        texts[-1]
        == post(yandex, yandex_body("stream me please")).json()["result"]["alternatives"][0][
            "message"
        ]["text"]
    )
