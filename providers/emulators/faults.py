"""Run-time fault injection: rules that match a request and break it in a chosen way.

A rule is JSON posted to ``/_emulator/faults``::

    {"kind": "http_429", "model": "yandexgpt-lite", "branch": "rc",
     "credential": null, "path": null, "count": 2, "retry_after": 1, "seconds": 600,
     "probability": null, "seed": null}

Only ``kind`` is required. A *model rule* applies to generation calls (Yandex completion,
completionAsync and OpenAI-compatible chat; GigaChat chat); ``model`` / ``branch`` /
``credential`` narrow it (absent = any; GigaChat ``-preview`` names are branch ``rc``). A *path
rule* (``path`` set, e.g. ``"/api/v2/oauth"``) applies to every request at exactly that path,
before authentication, and takes transport kinds only. ``count`` limits a rule to the next N
matching requests (absent = until cleared); the first matching rule wins.

``probability`` (0 < p <= 1; absent = 1) makes a rule fire on that share of the requests it
matches, at random (``{"kind": "http_500", "probability": 0.05}``: 5 % 5xx); a rule that does
not fire passes the request on to the next rule, and ``count`` counts only firings. The draw
comes from the rule's own generator when it has a ``seed`` (the same seed, the same sequence
of firings, whatever else the emulator serves), else from the emulator's, seeded by its
config's ``fault_seed`` (absent = unpredictable).

Transport kinds (handled here, before the handler builds an answer):

- ``http_<code>`` (e.g. ``http_429``, ``http_500``, ``http_502``, ``http_503``, ``http_504``,
  ``http_402``): that status in the provider's error envelope;
- ``http_429_retry_after``: 429 with ``Retry-After: <retry_after>``;
- ``timeout``: hang for ``seconds`` (default 600) before answering 504 — the client times out;
- ``reset``: the TCP connection is reset without a response;
- ``malformed_json``: 200 with a truncated JSON body.

Semantic kinds (the handler shapes a well-formed answer):

- ``content_filter`` (Yandex ``ALTERNATIVE_STATUS_CONTENT_FILTER``, GigaChat ``blacklist``),
  ``context_length`` (the context-window error), ``truncate`` (the answer is cut to half its
  tokens: ``TRUNCATED_FINAL`` / ``length``);
- ``stream_cut``: the connection drops after the first stream chunk (no final chunk, no
  ``[DONE]``); ``stream_error``: after the first chunk comes an error event (Yandex
  ``{"error": {...}}``, GigaChat ``data: {"status": 500, ...}``) and the stream ends. Both
  leave non-streaming calls alone;
- ``finish_error``: GigaChat ``finish_reason: error``;
- ``operation_error``: a Yandex async operation ends with an ``error`` instead of a response.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from aiohttp import web

from providers.emulators.common import EmulatorError, retry_after_header

SEMANTIC_KINDS = {
    "content_filter",
    "context_length",
    "truncate",
    "stream_cut",
    "stream_error",
    "finish_error",
    "operation_error",
}
TRANSPORT_KINDS = {"http_429_retry_after", "timeout", "reset", "malformed_json"}
_HTTP_KIND = re.compile(r"^http_([45]\d\d)$")
MALFORMED_BODY = b'{"result": {"alternatives": [{"message": {"role": "assistant", "te'


@dataclass
class FaultRule:
    kind: str
    model: str | None = None
    branch: str | None = None
    credential: str | None = None
    path: str | None = None
    count: int | None = None
    retry_after: float = 1.0
    seconds: float = 600.0
    probability: float | None = None
    seed: int | None = None
    _rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError("a fault rule is a JSON object with a string 'kind'")
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        rule = cls(**data)
        if not is_known_kind(rule.kind):
            raise ValueError(f"unknown fault kind {rule.kind!r}")
        if rule.count is not None and (not isinstance(rule.count, int) or rule.count < 1):
            raise ValueError("count must be a positive integer")
        _check_draw(rule.probability, rule.seed)
        if rule.path is not None and (rule.model or rule.branch or rule.credential):
            raise ValueError("a path rule cannot also name a model, branch or credential")
        if rule.path is not None and rule.kind in SEMANTIC_KINDS:
            raise ValueError(f"{rule.kind} cannot be a path rule: it shapes a model answer")
        return rule

    def fires(self, fallback: random.Random) -> bool:
        """Whether this rule fires for a request it matches (always, without a probability)."""
        if self.probability is None:
            return True
        return (self._rng or fallback).random() < self.probability

    def as_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def matches(self, model: str | None, branch: str | None, credential: str | None) -> bool:
        return (
            self.path is None
            and _same(self.model, model)
            and _same(self.branch, branch)
            and (self.credential is None or self.credential == credential)
        )


def _check_draw(probability: object, seed: object) -> None:
    if probability is not None and not (
        isinstance(probability, int | float)
        and not isinstance(probability, bool)
        and 0 < probability <= 1
    ):
        raise ValueError("probability must be a number in (0, 1]")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError("seed must be an integer")


def path_fault_hook(book: FaultBook, messages: dict[int, str]):
    """The middleware hook that applies path rules to any endpoint."""

    async def hook(request: web.Request) -> web.StreamResponse | None:
        return await apply_transport_fault(request, book.take_path(request.path), messages)

    return hook


def is_known_kind(kind: str) -> bool:
    return kind in SEMANTIC_KINDS or kind in TRANSPORT_KINDS or bool(_HTTP_KIND.match(kind))


def _same(wanted: str | None, actual: str | None) -> bool:
    return wanted is None or (actual is not None and wanted.lower() == actual.lower())


class FaultBook:
    """The active rules, first match wins; thread-safe because tests add rules from outside."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.fired = 0

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def as_json(self) -> list[dict]:
        with self._lock:
            return [rule.as_json() for rule in self._rules]

    def take(self, model: str | None, branch: str | None, credential: str | None):
        """The first model rule matching a generation call, consuming one of its uses."""
        return self._take(lambda rule: rule.matches(model, branch, credential))

    def take_path(self, path: str) -> FaultRule | None:
        """The first path rule for this request path (any endpoint, checked before auth)."""
        return self._take(lambda rule: rule.path == path)

    def _take(self, predicate: Callable[[FaultRule], bool]) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if predicate(rule) and rule.fires(self._rng):
                    self._consume(rule)
                    return rule
        return None

    def _consume(self, rule: FaultRule) -> None:
        self.fired += 1
        if rule.count is not None:
            rule.count -= 1
            if rule.count <= 0:
                self._rules.remove(rule)


async def apply_transport_fault(
    request: web.Request, rule: FaultRule | None, messages: dict[int, str]
) -> web.StreamResponse | None:
    """Raise or return the broken answer of a transport fault; None for no/semantic faults."""
    if rule is None or rule.kind in SEMANTIC_KINDS:
        return None
    if rule.kind == "http_429_retry_after":
        raise EmulatorError(429, messages[429], headers=retry_after_header(rule.retry_after))
    if match := _HTTP_KIND.match(rule.kind):
        status = int(match.group(1))
        raise EmulatorError(status, messages.get(status, f"Emulated error {status}"))
    if rule.kind == "timeout":
        await asyncio.sleep(rule.seconds)
        raise EmulatorError(504, messages.get(504, "Gateway Timeout"))
    if rule.kind == "reset":
        return reset_connection(request)
    return web.Response(body=MALFORMED_BODY, content_type="application/json")


def reset_connection(request: web.Request) -> web.StreamResponse:
    """Abort the TCP connection with an RST, so the client sees a reset, not a response."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise asyncio.CancelledError
