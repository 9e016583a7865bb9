"""A wire-faithful emulator of the YandexGPT REST API (llm., operation. and iam. hosts on one port).

Default credential: ``Authorization: Api-Key emu-yandex-key``; folder ``b1gemulatorfolder``;
model URIs ``gpt://b1gemulatorfolder/<model>/<branch>``. An IAM token comes from
``POST /iam/v1/tokens`` with ``{"yandexPassportOauthToken": "emu-oauth-token"}`` (or any
three-part ``jwt``, not verified). See ``common.py`` for trigger phrases, ``faults.py`` and
``control.py`` for the ``/_emulator`` control endpoint.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from aiohttp import web

from providers.emulators import yandex_openai
from providers.emulators import yandex_wire as wire
from providers.emulators.app import build_app
from providers.emulators.common import (
    EmulatorError,
    break_stream,
    dumps,
    json_response,
    prune_expired,
    read_json,
    stamp_headers,
)
from providers.emulators.yandex_state import (
    HEADERS,
    STATE,
    Operation,
    YandexEmulatorConfig,
    YandexState,
)

__all__ = ["YandexEmulatorConfig", "create_app"]

routes = web.RouteTableDef()


def create_app(config: YandexEmulatorConfig | None = None) -> web.Application:
    state = YandexState(config or YandexEmulatorConfig())
    return build_app(
        STATE,
        state,
        (routes, yandex_openai.routes),
        messages=wire.MESSAGES,
        render_error=wire.render_error,
        headers=HEADERS,
        client_id_header="x-client-request-id",
    )


@routes.post("/foundationModels/v1/completion")
async def completion(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    credential = state.authenticate(request)
    call = wire.parse_completion(await read_json(request), state.config.folder_id)
    with state.slot(credential):
        fault, broken = await state.run_faults(request, call.ref, credential)
        if broken is not None:
            return broken
        outcome = state.generate(call, fault)
        if call.stream:
            return await _stream(request, outcome, fault)
        return json_response({"result": wire.result_json(outcome)})


async def _stream(request: web.Request, outcome: wire.Outcome, fault) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = wire.unconfirmed.YANDEX_STREAM_CONTENT_TYPE
    response.charset = "utf-8"
    stamp_headers(response, request, HEADERS)
    await response.prepare(request)
    delay = request.app[STATE].runtime.stream_chunk_delay
    for prefix in wire.stream_prefixes(outcome.text):
        chunk = wire.result_json(outcome, prefix, "ALTERNATIVE_STATUS_PARTIAL")
        await response.write(_line(chunk))
        await asyncio.sleep(delay)
        if await break_stream(request, response, fault, STREAM_ERROR):
            return response
    await response.write(_line(wire.result_json(outcome)))
    await response.write_eof()
    return response


# A mid-stream failure as grpc-gateway reports it: a last line with the error envelope.
STREAM_ERROR = dumps(wire.error_body(500, "Internal error")).encode() + b"\n"


def _line(result: dict) -> bytes:
    return dumps({"result": result}).encode() + b"\n"


@routes.post("/foundationModels/v1/completionAsync")
async def completion_async(request: web.Request) -> web.Response:
    state = request.app[STATE]
    credential = state.authenticate(request)
    call = wire.parse_completion(await read_json(request), state.config.folder_id)
    fault, broken = await state.run_faults(request, call.ref, credential)
    if broken is not None:
        return broken
    operation = _new_operation(state, call, fault)
    return json_response(_operation_json(operation, time.time()))


def _new_operation(state: YandexState, call: wire.CompletionCall, fault) -> Operation:
    now = time.time()
    op_id = "d7q" + secrets.token_hex(9)[:17]
    meta = {
        "id": op_id,
        "description": "Async GPT Completion",
        "createdAt": wire.rfc3339(now),
        "createdBy": "ajeemulatoraccount00",
        "modifiedAt": wire.rfc3339(now),
    }
    result = _operation_result(state, call, fault)
    operation = Operation(meta, now + state.config.operation_delay, result)
    prune_expired(state.operations, lambda op: _expired(state, op))
    state.operations[op_id] = operation
    return operation


def _operation_result(state: YandexState, call: wire.CompletionCall, fault) -> dict:
    """``response`` (with ``@type``) or ``error`` (a google.rpc.Status) of a finished operation."""
    if fault is not None and fault.kind == "operation_error":
        return _status(13, "Internal error")
    try:
        outcome = state.generate(call, fault)
    except EmulatorError as error:
        return _status(wire.GRPC_CODES.get(error.status, 2), error.message)
    return {"response": {"@type": wire.COMPLETION_TYPE, **wire.result_json(outcome)}}


def _status(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "details": []}}


def _operation_json(operation: Operation, now: float) -> dict:
    if now < operation.ready_at:
        return {**operation.meta, "done": False}
    done = {**operation.meta, "modifiedAt": wire.rfc3339(operation.ready_at), "done": True}
    return {**done, **operation.result}


@routes.get("/operations/{operation_id}:cancel")
async def cancel_operation(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    operation = _find_operation(state, request.match_info["operation_id"])
    if time.time() < operation.ready_at:
        operation.ready_at = time.time()
        operation.result = _status(1, "Operation cancelled")
    return json_response(_operation_json(operation, time.time()))


@routes.get("/operations/{operation_id}")
async def get_operation(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    operation = _find_operation(state, request.match_info["operation_id"])
    return json_response(_operation_json(operation, time.time()))


def _expired(state: YandexState, operation: Operation) -> bool:
    return time.time() > operation.ready_at + state.config.operation_retention


def _find_operation(state: YandexState, op_id: str) -> Operation:
    operation = state.operations.get(op_id)
    if operation is not None and _expired(state, operation):
        del state.operations[op_id]
        operation = None
    if operation is None:
        status = wire.unconfirmed.YANDEX_UNKNOWN_OPERATION_STATUS
        raise EmulatorError(status, f"Operation {op_id} not found")
    return operation


@routes.post("/foundationModels/v1/tokenize")
async def tokenize(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    body = await read_json(request)
    ref = wire.parse_model_uri(body.get("modelUri"), state.config.folder_id)
    text = body.get("text")
    if not isinstance(text, str) or not text:
        raise EmulatorError(400, "text length is 0, which is outside the range (0, 100000]")
    tokens = [wire.special("<s>"), *wire.text_tokens(text)]
    return json_response({"tokens": tokens, "modelVersion": state.version(ref)})


@routes.post("/foundationModels/v1/tokenizeCompletion")
async def tokenize_completion(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    call = wire.parse_completion(await read_json(request), state.config.folder_id)
    tokens = wire.completion_tokens(call.messages)
    return json_response({"tokens": tokens, "modelVersion": state.version(call.ref)})


@routes.post("/foundationModels/v1/textEmbedding")
async def text_embedding(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    body = await read_json(request)
    ref = wire.parse_embedding_uri(body.get("modelUri"), state.config.folder_id)
    return json_response(wire.text_embedding(ref, body.get("text")))


@routes.post("/iam/v1/tokens")
async def iam_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    oauth, jwt = body.get("yandexPassportOauthToken"), body.get("jwt")
    if isinstance(oauth, str) and oauth in state.config.oauth_tokens:
        return json_response(state.issue_iam_token(f"oauth:{oauth[:8]}"))
    if isinstance(jwt, str) and jwt.count(".") == 2:
        return json_response(state.issue_iam_token(f"jwt:{jwt[:8]}"))
    raise EmulatorError(401, "Authentication failed: invalid OAuth token or JWT")
