"""Pieces both emulators share: the toy tokenizer, deterministic answers, the error type,
the per-app runtime state (counters, in-flight gauge, latency) and the common middleware.

Trigger phrases (put them anywhere in the last user message):

- ``FORBIDDEN-TOPIC``: the provider's content filter fires (Yandex ``CONTENT_FILTER``,
  GigaChat ``finish_reason: blacklist``) and the answer is a stock refusal.
- ``EMULATOR-FINISH-ERROR``: GigaChat answers with ``finish_reason: error``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

CONTENT_FILTER_TRIGGER = "FORBIDDEN-TOPIC"
# Optional request headers the real services accept; stats report which ones clients sent.
NOTED_HEADERS = (
    "x-client-request-id",
    "x-data-logging-enabled",
    "x-folder-id",
    "OpenAI-Project",
    "idempotency-key",
    "x-retry-attempt",
    "X-Request-ID",
    "X-Session-ID",
    "X-Client-ID",
)
MAX_BODY_BYTES = 20 * 1024 * 1024  # GigaChat documents < 20 MB per request
REQUEST_LOG_SIZE = 10_000  # the newest calls kept by `/_emulator/requests`
FINISH_ERROR_TRIGGER = "EMULATOR-FINISH-ERROR"

_PIECE = re.compile(r"\s*\S{1,4}|\s+$")
_FILLER = (
    "The emulator keeps its answers short and deterministic.",
    "Every prompt maps to exactly one reply.",
    "Nothing here comes from a real language model.",
    "Token counts follow a simple four-characters-per-token rule.",
    "Latency and faults are configured through the control endpoint.",
    "The served version string can change at run time.",
)


dumps = functools.partial(json.dumps, ensure_ascii=False)


def json_response(body: object, status: int = 200, **kwargs) -> web.Response:
    """A JSON response with real UTF-8 (as the providers send), not \\u escapes."""
    return web.json_response(body, status=status, dumps=dumps, **kwargs)


def token_pieces(text: str) -> list[str]:
    """Split text into toy tokens (about 4 characters each) whose concatenation is the text."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    return len(token_pieces(text))


def token_id(piece: str) -> int:
    return int.from_bytes(hashlib.blake2s(piece.encode()).digest()[:4], "big") % 120_000 + 100


def first_words(text: str, limit: int = 6) -> str:
    return " ".join(text.split()[:limit])


def compose_answer(model: str, prompt: str) -> str:
    """The emulator's deterministic reply: echoes the prompt's first words, plus filler."""
    digest = hashlib.sha256(f"{model}\n{prompt}".encode()).digest()
    fillers = [_FILLER[(digest[i] + i) % len(_FILLER)] for i in range(1 + digest[0] % 3)]
    echo = first_words(prompt) or "(empty prompt)"
    return f"Emulated {model} reply to: {echo}. " + " ".join(fillers)


def truncate_tokens(text: str, max_tokens: int) -> str:
    return "".join(token_pieces(text)[:max_tokens])


def new_request_id() -> str:
    return str(uuid.uuid4())


REQUEST_ID = web.RequestKey("request_id", str)


class EmulatorError(Exception):
    """An upstream-style error; each emulator's middleware renders it in its own envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.body = body  # replaces the envelope, e.g. GigaChat OAuth's {"code", "message"}


@dataclass
class Runtime:
    """Mutable state of one emulator app: what the control endpoint reads and changes."""

    latency: float = 0.0
    latency_jitter: float = 0.0
    stream_chunk_delay: float = 0.0
    requests: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    in_flight: int = 0
    in_flight_by_route: Counter = field(default_factory=Counter)
    in_flight_by_credential: Counter = field(default_factory=Counter)
    rejected_concurrency: int = 0
    tokens_issued: int = 0
    headers_seen: Counter = field(default_factory=Counter)
    last_headers: dict = field(default_factory=dict)
    # Every provider call, newest last: what tests count per job (`/_emulator/requests`).
    request_log: deque = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))

    def log_request(self, request: web.Request, client_id: str | None, status: int) -> None:
        self.request_log.append(
            {
                "request_id": client_id,
                "method": request.method,
                "path": request.path,
                "status": status,
                "at": time.time(),
            }
        )

    def logged(self, request_id: str | None = None) -> list[dict]:
        entries = list(self.request_log)
        return [e for e in entries if request_id is None or e["request_id"] == request_id]

    def note_headers(self, request: web.Request) -> None:
        """Remember the optional client headers (never Authorization) for tests to check."""
        seen = {name: request.headers[name] for name in NOTED_HEADERS if name in request.headers}
        self.headers_seen.update(seen.keys())
        self.last_headers = seen
        logger.debug("%s %s %s", request.method, request.path, seen)

    async def sleep_latency(self) -> None:
        delay = self.latency + (
            random.uniform(0, self.latency_jitter) if self.latency_jitter else 0
        )
        if delay > 0:
            await asyncio.sleep(delay)

    def stats(self) -> dict:
        return {
            "requests": dict(self.requests),
            "models": dict(self.models),
            "in_flight": self.in_flight,
            "in_flight_by_route": {k: v for k, v in self.in_flight_by_route.items() if v},
            "in_flight_by_credential": {k: v for k, v in self.in_flight_by_credential.items() if v},
            "rejected_concurrency": self.rejected_concurrency,
            "tokens_issued": self.tokens_issued,
            "headers_seen": dict(self.headers_seen),
            "last_headers": self.last_headers,
        }


PRUNE_ABOVE = 10_000


K = TypeVar("K")
V = TypeVar("V")


def prune_expired(entries: dict[K, V], is_expired: Callable[[V], bool]) -> None:
    """Drop expired entries once a store grows past PRUNE_ABOVE (a long `llmgw up` run)."""
    if len(entries) > PRUNE_ABOVE:
        for key in [key for key, value in entries.items() if is_expired(value)]:
            del entries[key]


def retry_after_header(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


class ConcurrencySlot:
    """Hold one in-flight slot of a credential; 429 (via ``on_reject``) past ``limit``."""

    def __init__(self, runtime: Runtime, credential: str, limit: int, on_reject: EmulatorError):
        self.runtime, self.credential, self.limit = runtime, credential, limit
        self.on_reject = on_reject

    def __enter__(self) -> ConcurrencySlot:
        if self.runtime.in_flight_by_credential[self.credential] >= self.limit:
            self.runtime.rejected_concurrency += 1
            raise self.on_reject
        self.runtime.in_flight_by_credential[self.credential] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.runtime.in_flight_by_credential[self.credential] -= 1


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[EmulatorError], web.Response]


Hook = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def make_middleware(
    runtime: Runtime,
    render_error: ErrorRenderer,
    headers: tuple[str, str],
    before: Hook,
    client_id_header: str,
):
    """Count requests, track in-flight, run ``before`` (path faults), stamp request-id
    headers, render EmulatorErrors in the provider's envelope, and log each request under
    the client's request id (``client_id_header``) with its status (0: connection reset)."""
    request_header, trace_header = headers

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        route = f"{request.method} {_route_name(request)}"
        runtime.requests[route] += 1
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        runtime.in_flight += 1
        runtime.in_flight_by_route[route] += 1
        runtime.note_headers(request)
        response: web.StreamResponse | None = None
        try:
            response = await before(request) or await handler(request)
        except EmulatorError as error:
            response = render_error(error)
            response.headers.update(error.headers)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = render_error(EmulatorError(error.status, _http_message(error)))
        finally:
            runtime.in_flight -= 1
            runtime.in_flight_by_route[route] -= 1
            status = response.status if response is not None else 0
            runtime.log_request(request, request.headers.get(client_id_header), status)
        if not response.prepared:
            response.headers[request_header] = request_id
            response.headers[trace_header] = _trace_value(request, trace_header)
        return response

    return middleware


def _http_message(error: web.HTTPException) -> str:
    """aiohttp's own errors (unknown path, wrong method, body too big) in provider words."""
    if error.status == 413:
        return "Payload too large"
    return error.reason


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _trace_value(request: web.Request, trace_header: str) -> str:
    # GigaChat echoes the client's session id; Yandex returns a server trace id.
    return request.headers.get(trace_header) or uuid.uuid4().hex


def stamp_headers(response: web.StreamResponse, request: web.Request, names: tuple[str, str]):
    """Headers for responses a handler prepares itself (streams), before ``prepare``."""
    response.headers[names[0]] = request[REQUEST_ID]
    response.headers[names[1]] = _trace_value(request, names[1])


def abort(request: web.Request) -> None:
    """Drop the connection mid-response (a stream cut by a proxy or a crash)."""
    if request.transport is not None:
        request.transport.abort()


async def break_stream(
    request: web.Request, response: web.StreamResponse, fault, error_payload: bytes
) -> bool:
    """Apply a stream fault after a chunk; True when the stream must stop here."""
    kind = getattr(fault, "kind", None)
    if kind == "stream_cut":
        abort(request)
        return True
    if kind == "stream_error":
        await response.write(error_payload)
        await response.write_eof()
        return True
    return False


async def read_json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError as error:
        raise EmulatorError(400, f"Invalid JSON body: {error}") from error
    if not isinstance(body, dict):
        raise EmulatorError(400, "Request body must be a JSON object")
    return body
