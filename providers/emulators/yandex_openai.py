"""The YandexGPT emulator's OpenAI-compatible surface: ``/v1/models``, ``/v1/chat/completions``.

``model`` is the full URI (``gpt://<folder>/<model>/<branch>``). Usage is in numbers here, not
strings. Errors reuse the native envelope (the real shape is unconfirmed).

Stream chunks follow the recorded wire (yandex-cloud-ml-sdk's cassette
``tests/chat/cassettes/test_completions/test_run_stream.yaml``): an intermediate chunk's choice
has no ``finish_reason`` key at all (OpenAI sends ``null``; the Yandex SDK calls ``.lower()`` on
the value when the key is present), only the finishing chunk has one, then a ``choices: []``
chunk with ``usage`` and ``[DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid

from aiohttp import web

from providers.emulators import yandex_wire as wire
from providers.emulators.catalogue import YANDEX_MODELS
from providers.emulators.common import (
    EmulatorError,
    break_stream,
    dumps,
    json_response,
    read_json,
    stamp_headers,
    token_pieces,
)
from providers.emulators.yandex_state import HEADERS, STATE

routes = web.RouteTableDef()
FINISH_REASONS = {
    "ALTERNATIVE_STATUS_FINAL": "stop",
    "ALTERNATIVE_STATUS_TRUNCATED_FINAL": "length",
    "ALTERNATIVE_STATUS_CONTENT_FILTER": "content_filter",
    "ALTERNATIVE_STATUS_TOOL_CALLS": "tool_calls",
}


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    folder = request.headers.get("OpenAI-Project") or state.config.folder_id
    data = [
        {
            "id": f"gpt://{folder}/{name}/{branch}",
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": model["owned_by"],
        }
        for name, model in YANDEX_MODELS.items()
        for branch in model["versions"]
    ]
    return json_response({"object": "list", "data": data})


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    credential = state.authenticate(request)
    body = await read_json(request)
    call = _parse_chat(body, state.config.folder_id)
    with state.slot(credential):
        fault, broken = await state.run_faults(request, call.ref, credential)
        if broken is not None:
            return broken
        outcome = state.generate(call, fault)
        if body.get("stream"):
            return await _stream(request, call, outcome, fault)
        return json_response(_completion_json(call, outcome))


def _parse_chat(body: dict, folder_id: str) -> wire.CompletionCall:
    ref = wire.parse_model_uri(body.get("model"), folder_id)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise EmulatorError(400, "messages: value must contain at least 1 item")
    messages = wire.parse_messages([_native_message(m) for m in raw])
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return wire.CompletionCall(
        ref=ref,
        messages=messages,
        stream=bool(body.get("stream")),
        max_tokens=wire.parse_max_tokens(max_tokens),
        input_tokens=wire.prompt_token_count(messages),
        tools=wire.parse_tools(body.get("tools")),
        tool_choice=_native_tool_choice(body.get("tool_choice")),
    )


def _native_tool_choice(choice: object) -> dict | None:
    if isinstance(choice, dict):
        return {"functionName": (choice.get("function") or {}).get("name")}
    modes = {"none": "NONE", "auto": "AUTO", "required": "REQUIRED"}
    return {"mode": modes[choice]} if choice in modes else None


def _native_message(message: object) -> dict:
    if not isinstance(message, dict):
        raise EmulatorError(400, "messages: each message must be an object")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    content = content if isinstance(content, str) else ""
    role = "system" if message.get("role") == "developer" else message.get("role")
    if role == "tool":
        result = {"functionResult": {"name": message.get("name", ""), "content": content}}
        return {"role": "user", "toolResultList": {"toolResults": [result]}}
    if role == "assistant" and message.get("tool_calls"):
        calls = [_native_call(call) for call in message["tool_calls"]]
        return {"role": "assistant", "toolCallList": {"toolCalls": calls}}
    return {"role": role, "text": content}


def _native_call(call: dict) -> dict:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError as error:
        raise EmulatorError(400, f"tool_calls: arguments are not JSON: {error}") from error
    return {"functionCall": {"name": function.get("name", ""), "arguments": arguments}}


def _message(outcome: wire.Outcome) -> dict:
    if outcome.tool_calls is None:
        return {"role": "assistant", "content": outcome.text}
    return {"role": "assistant", "content": None, "tool_calls": _tool_calls(outcome)}


def _tool_calls(outcome: wire.Outcome) -> list[dict]:
    """OpenAI shape: ``arguments`` is a JSON *string* here, unlike the native API."""
    return [
        {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": call["name"], "arguments": dumps(call["arguments"])},
        }
        for index, call in enumerate(outcome.tool_calls or [])
    ]


def _completion_json(call: wire.CompletionCall, outcome: wire.Outcome) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.ref.uri,
        "choices": [
            {
                "index": 0,
                "message": _message(outcome),
                "finish_reason": FINISH_REASONS[outcome.status],
            }
        ],
        "usage": _usage(outcome),
    }


def _usage(outcome: wire.Outcome) -> dict:
    total = outcome.input_tokens + outcome.completion_tokens
    return {
        "prompt_tokens": outcome.input_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": total,
    }


async def _stream(request, call, outcome, fault) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    stamp_headers(response, request, HEADERS)
    await response.prepare(request)
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    for delta in _deltas(outcome):
        await _event(response, _chunk(chunk_id, created, call, [_choice(delta, None)]))
        if await break_stream(request, response, fault, STREAM_ERROR):
            return response
    finish = _choice({}, FINISH_REASONS[outcome.status])
    await _event(response, _chunk(chunk_id, created, call, [finish]))
    await _event(response, {**_chunk(chunk_id, created, call, []), "usage": _usage(outcome)})
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


STREAM_ERROR = f"data: {dumps(wire.error_body(500, 'Internal error'))}\n\n".encode()


def _deltas(outcome: wire.Outcome) -> list[dict]:
    if outcome.tool_calls is not None:
        calls = [{"index": i, **call} for i, call in enumerate(_tool_calls(outcome))]
        return [{"role": "assistant", "tool_calls": calls}]
    pieces = token_pieces(outcome.text)
    deltas = [{"content": "".join(pieces[i : i + 3])} for i in range(0, len(pieces), 3)]
    deltas = deltas or [{"content": ""}]
    deltas[0]["role"] = "assistant"
    return deltas


def _choice(delta: dict, finish_reason: str | None) -> dict:
    choice = {"index": 0, "delta": delta}
    return choice if finish_reason is None else choice | {"finish_reason": finish_reason}


def _chunk(chunk_id: str, created: int, call: wire.CompletionCall, choices: list) -> dict:
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": call.ref.uri,
        "choices": choices,
    }


async def _event(response: web.StreamResponse, data: dict) -> None:
    await response.write(f"data: {dumps(data)}\n\n".encode())
