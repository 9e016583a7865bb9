"""A wire-faithful emulator of the GigaChat REST API (the OAuth host and the API host on one port).

Default authorization key: ``base64("emu-client:emu-secret")`` (``ZW11LWNsaWVudDplbXUtc2VjcmV0``),
sent as ``Authorization: Basic <key>`` with a uuid4 ``RqUID`` and ``scope=GIGACHAT_API_PERS``
(or ``_B2B`` / ``_CORP``) to ``POST /api/v2/oauth``; the token then goes in
``Authorization: Bearer <token>`` to ``/api/v1/...``. ``-preview`` names are served too (the
``rc`` channel). See ``common.py`` for trigger phrases, ``faults.py`` and ``control.py`` for the
``/_emulator`` control endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from providers.emulators import gigachat_wire as wire
from providers.emulators import unconfirmed
from providers.emulators.app import EmulatorState, build_app
from providers.emulators.catalogue import gigachat_versions
from providers.emulators.common import (
    ConcurrencySlot,
    EmulatorError,
    break_stream,
    count_tokens,
    dumps,
    json_response,
    prune_expired,
    read_json,
    retry_after_header,
    stamp_headers,
)
from providers.emulators.faults import apply_transport_fault

HEADERS = ("X-Request-Id", "X-Session-Id")
DEFAULT_KEY = base64.b64encode(b"emu-client:emu-secret").decode()
KNOWN_SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")


@dataclass
class GigaChatEmulatorConfig:
    credentials: set[str] = field(default_factory=lambda: {DEFAULT_KEY})
    scopes: set[str] = field(default_factory=lambda: set(KNOWN_SCOPES))
    token_ttl: float = 1800.0
    latency: float = 0.0
    latency_jitter: float = 0.0
    max_concurrency: int = 10
    embedding_dimension: int = 1024
    stream_chunk_delay: float = 0.0
    concurrency_retry_after: float | None = unconfirmed.GIGACHAT_CONCURRENCY_RETRY_AFTER
    fault_seed: int | None = None  # the draws of fault rules with a probability (tests)
    # Token requests per second per key before a 429; the real limit is 10. Off by default
    # so that test suites creating many clients are not throttled.
    oauth_rate_limit: int | None = None
    balance: dict[str, int] = field(
        default_factory=lambda: {
            "GigaChat": 1_000_000,
            "GigaChat-Pro": 991_490,
            "embeddings": 5_000_000,
        }
    )


@dataclass
class Grant:
    credential: str
    scope: str
    expires_at_ms: int


class GigaChatState(EmulatorState):
    def __init__(self, config: GigaChatEmulatorConfig):
        super().__init__(config, gigachat_versions())
        self.config = config
        self.grants: dict[str, Grant] = {}
        self.oauth_calls: dict[str, deque[float]] = {}

    def issue_token(self, key: str, scope: str) -> dict:
        token = "eyJjdHkiOiJqd3QiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIiwiYWxnIjoiUlNBLU9BRVAtMjU2In0."
        token += ".".join(secrets.token_urlsafe(n) for n in (64, 16, 96, 32))
        expires_at_ms = int((time.time() + self.config.token_ttl) * 1000)
        now_ms = time.time() * 1000
        prune_expired(self.grants, lambda grant: grant.expires_at_ms <= now_ms)
        self.grants[token] = Grant(_credential_id(key), scope, expires_at_ms)
        self.runtime.tokens_issued += 1
        return {"access_token": token, "expires_at": expires_at_ms}

    def check_oauth_rate(self, key: str) -> None:
        limit = self.config.oauth_rate_limit
        if limit is None:
            return
        now, calls = time.monotonic(), self.oauth_calls.setdefault(key, deque())
        while calls and now - calls[0] >= 1.0:
            calls.popleft()
        if len(calls) >= limit:
            raise EmulatorError(429, wire.MESSAGES[429])
        calls.append(now)

    def authenticate(self, request: web.Request) -> Grant:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self.grants.get(token.strip()) if scheme == "Bearer" else None
        if grant is None or grant.expires_at_ms <= time.time() * 1000:
            raise EmulatorError(401, "Unauthorized")
        return grant

    def slot(self, grant: Grant) -> ConcurrencySlot:
        headers = retry_after_header(self.config.concurrency_retry_after)
        reject = EmulatorError(429, wire.MESSAGES[429], headers=headers)
        return ConcurrencySlot(self.runtime, grant.credential, self.config.max_concurrency, reject)

    def version(self, ref: wire.ModelRef) -> str:
        """The served version; a retired one answers like an unknown model."""
        version = self.control.versions.get(ref.base, ref.branch)
        if version is None:
            raise EmulatorError(404, "No such model")
        return version

    def serves(self, name: str) -> bool:
        ref = wire.find_chat_model(name) if name not in wire.GIGACHAT_EMBEDDERS else None
        return ref is None or self.control.versions.get(ref.base, ref.branch) is not None


def _credential_id(key: str) -> str:
    """The client id inside the key: the unit of the concurrency gauge and of fault rules."""
    return "client:" + base64.b64decode(key).decode(errors="replace").split(":", 1)[0]


STATE = web.AppKey("gigachat_state", GigaChatState)
routes = web.RouteTableDef()


def create_app(config: GigaChatEmulatorConfig | None = None) -> web.Application:
    state = GigaChatState(config or GigaChatEmulatorConfig())
    return build_app(
        STATE,
        state,
        (routes,),
        messages=wire.MESSAGES,
        render_error=wire.render_error,
        headers=HEADERS,
        client_id_header="X-Request-ID",
    )


def _oauth_error(status: int, code: int, message: str) -> EmulatorError:
    return EmulatorError(status, message, body={"code": code, "message": message})


@routes.post("/api/v2/oauth")
async def oauth(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _check_rquid(request.headers.get("RqUID"))
    key = _basic_key(request, state.config.credentials)
    state.check_oauth_rate(key)
    scope = (await request.post()).get("scope") or ""
    if not scope:
        raise _oauth_error(400, 5, "scope is empty")
    if scope not in KNOWN_SCOPES:
        raise _oauth_error(400, 1, "scope data format invalid")
    if scope not in state.config.scopes:
        status = unconfirmed.GIGACHAT_SCOPE_MISMATCH_STATUS
        raise _oauth_error(status, 7, "scope from db not fully includes consumed scope")
    return json_response(state.issue_token(key, str(scope)))


def _check_rquid(value: str | None) -> None:
    try:
        valid = value is not None and uuid.UUID(value).version == 4
    except ValueError:
        valid = False
    if not valid:
        raise _oauth_error(400, 3, "RqUID header is missing or is not a uuid4")


def _basic_key(request: web.Request, accepted: set[str]) -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme != "Basic" or not _decodes(key):
        raise _oauth_error(401, 4, "Can't decode 'Authorization' header")
    if key not in accepted:
        raise _oauth_error(401, 6, "credentials doesn't match db data")
    return key


def _decodes(key: str) -> bool:
    try:
        return b":" in base64.b64decode(key, validate=True)
    except ValueError:
        return False


@routes.post("/api/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    grant = state.authenticate(request)
    body = await read_json(request)
    call = wire.parse_chat(body)
    version = state.version(call.ref)
    with state.slot(grant):
        state.runtime.models[call.ref.name] += 1
        fault = state.control.faults.take(call.ref.base, call.ref.branch, grant.credential)
        broken = await apply_transport_fault(request, fault, wire.MESSAGES)
        if broken is not None:
            return broken
        await state.runtime.sleep_latency()
        outcome = wire.generate(call, version, fault, body)
        if call.stream:
            return await _stream(request, call, outcome, fault)
        return json_response(wire.completion_json(outcome))


async def _stream(request, call: wire.ChatCall, outcome: wire.Outcome, fault) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    stamp_headers(response, request, HEADERS)
    await response.prepare(request)
    delay = max(call.update_interval, request.app[STATE].runtime.stream_chunk_delay)
    for index, delta in enumerate(_deltas(outcome)):
        await _event(response, wire.chunk_json(outcome, delta))
        if await break_stream(request, response, fault, STREAM_ERROR):
            return response
        if index and delay:
            await asyncio.sleep(delay)
    await _event(response, wire.chunk_json(outcome, {"content": ""}, finish=True))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


STREAM_ERROR = f"data: {dumps({'status': 500, 'message': wire.MESSAGES[500]})}\n\n".encode()


def _deltas(outcome: wire.Outcome) -> list[dict]:
    words = outcome.text.split(" ")
    parts = [" ".join(words[i : i + 4]) for i in range(0, len(words), 4)]
    deltas = [{"content": (" " if i else "") + part} for i, part in enumerate(parts)]
    deltas[0]["role"] = "assistant"
    if outcome.function_call is not None:
        deltas[0].update(wire.message_json(outcome))
    return deltas


async def _event(response: web.StreamResponse, data: dict) -> None:
    await response.write(f"data: {dumps(data)}\n\n".encode())


@routes.get("/api/v1/models")
async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    served = [model for model in wire.model_list() if state.serves(model["id"])]
    return json_response({"object": "list", "data": served})


@routes.get("/api/v1/models/{model}")
async def get_model(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    name = wire.find_any_model(request.match_info["model"])
    if not state.serves(name):
        raise EmulatorError(404, "No such model")
    return json_response(wire.model_json(name))


@routes.post("/api/v1/tokens/count")
async def tokens_count(request: web.Request) -> web.Response:
    request.app[STATE].authenticate(request)
    body = await read_json(request)
    wire.find_any_model(body.get("model"))
    texts = _inputs(body.get("input"))
    counts = [{"object": "tokens", "tokens": count_tokens(t), "characters": len(t)} for t in texts]
    return json_response(counts)


@routes.post("/api/v1/embeddings")
async def embeddings(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.authenticate(request)
    body = await read_json(request)
    model = body.get("model")
    if model not in wire.GIGACHAT_EMBEDDERS:
        raise EmulatorError(404, "No such model")
    dimension = state.config.embedding_dimension
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": wire.embedding(text, dimension),
            "usage": {"prompt_tokens": count_tokens(text)},
        }
        for index, text in enumerate(_inputs(body.get("input")))
    ]
    return json_response({"object": "list", "model": model, "data": data})


def _inputs(value: object) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise EmulatorError(422, "Invalid params: input must be a string or a list of strings")
    return texts


@routes.get("/api/v1/balance")
async def balance(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grant = state.authenticate(request)
    if grant.scope == "GIGACHAT_API_CORP":
        raise EmulatorError(403, "Permission denied")
    values = [{"usage": usage, "value": value} for usage, value in state.config.balance.items()]
    return json_response({"balance": values})
