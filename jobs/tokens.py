"""Token counts by the provider's own tokenizer, cached in Redis, with an estimate as fallback.

`TokenCounter` serves `POST /v1/tokenize`, GigaChat's `POST /v1/tokens/count`, and the
submission path: the prompt's count decides which versions' context windows fit
(`routing.plan`) and what admission reserves (`jobs.admission`).

- The tokenizer is the resolved version's: YandexGPT `tokenizeCompletion` for messages (it
  counts the chat template too) and `tokenize` for plain text; GigaChat `/tokens/count`.
- Counts are cached under `storage.keys.token_count` (a SHA-256 of the upstream model id,
  its release, the kind and the content — never the content) for `TOKEN_COUNT_TTL_SECONDS`.
  In front of Redis each process keeps the last `LOCAL_ENTRIES` (4,096) counts under the
  same key and the same expiry (`LocalCounts`), so a repeated prompt costs no round trip.
  That is safe because a count of the same text by the same tokenizer release never
  changes; the release is in the key.
- The tokenizer is asked with a short timeout (`LLMGW_TOKENIZER_TIMEOUT_SECONDS`, default
  2 s). When it fails — unreachable, slow, refusing — the figure is the estimate, characters
  ÷ 4 (rounded up), and says so (`source: "estimate"` and the reason); a submission then goes
  ahead on the estimate rather than fail on a tokenizer outage. Estimates are not cached.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitoring.metrics import TOKEN_COUNTS
from providers.base import Message, Provider
from providers.errors import ProviderError
from routing.errors import RoutingError
from routing.service import Route
from storage import keys

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 2.0
LOCAL_ENTRIES = 4096


class LocalCounts:
    """A bounded, thread-safe LRU of counts by their Redis key, each kept at most
    `ttl_seconds` from when it was read or written (a count never changes, so outliving the
    Redis copy by less than that is harmless)."""

    def __init__(
        self, size: int = LOCAL_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size, self.clock = size, clock
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: str, tokens: int, ttl_seconds: float) -> None:
        with self._lock:
            self._entries[key] = (tokens, self.clock() + ttl_seconds)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    source: str  # "tokenizer" (asked now or cached) or "estimate"
    cached: bool = False
    fallback_reason: str | None = None  # why the estimate: the provider error's reason


def estimate(texts: tuple[str, ...]) -> int:
    """The fallback: characters ÷ 4, rounded up."""
    return math.ceil(sum(len(text) for text in texts) / 4)


@dataclass(frozen=True)
class TokenCounter:
    redis: Any
    providers: Callable[[str], Provider]
    resolve: Callable[[str], Route]
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ttl_seconds: int = keys.TOKEN_COUNT_TTL_SECONDS
    local: LocalCounts = field(default_factory=LocalCounts, compare=False, repr=False)

    def messages(self, route: Route, messages: tuple[Message, ...]) -> TokenCount:
        content = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
        return self._count(
            route,
            "messages",
            content,
            lambda p: p.count_tokens(route.upstream_id, messages),
            tuple(m.content for m in messages),
        )

    def text(self, route: Route, text: str) -> TokenCount:
        return self._count(
            route,
            "text",
            text,
            lambda p: p.count_text_tokens(route.upstream_id, (text,)),
            (text,),
        )

    def prompt_tokens(self, model_id: str, messages: tuple[Message, ...]) -> int | None:
        """The prompt's count for a submission, by the tokenizer of what `model_id` resolves
        to; None when it does not resolve (the planner then says why)."""
        try:
            route = self.resolve(model_id)
        except RoutingError:
            return None
        return self.messages(route, messages).tokens

    def _count(
        self,
        route: Route,
        kind: str,
        content: str,
        ask: Callable[[Provider], int],
        texts: tuple[str, ...],
    ) -> TokenCount:
        key = keys.token_count(route.provider, route.upstream_id, kind, content, route.version)
        cached = self.local.get(key)
        if cached is None:
            cached = self._get(key)
            if cached is not None:
                self.local.put(key, cached, self.ttl_seconds)
        if cached is not None:
            TOKEN_COUNTS.labels(route.provider, "cache").inc()
            return TokenCount(cached, "tokenizer", cached=True)
        timeout = (self.timeout_seconds, self.timeout_seconds)
        try:
            tokens = ask(self.providers(route.provider).with_timeout(timeout))
        except ProviderError as exc:
            log.info("tokenizer of %s unavailable (%s); estimating", route.model_id, exc.reason)
            TOKEN_COUNTS.labels(route.provider, "estimate").inc()
            return TokenCount(estimate(texts), "estimate", fallback_reason=exc.reason)
        TOKEN_COUNTS.labels(route.provider, "tokenizer").inc()
        self._set(key, tokens)
        self.local.put(key, tokens, self.ttl_seconds)
        return TokenCount(tokens, "tokenizer")

    def _get(self, key: str) -> int | None:
        try:
            raw = self.redis.get(key)
        except Exception:  # the cache is an optimisation: Redis down means ask the tokenizer
            log.warning("token count cache unreadable", exc_info=True)
            return None
        return int(raw) if raw is not None else None

    def _set(self, key: str, tokens: int) -> None:
        try:
            self.redis.set(key, tokens, ex=self.ttl_seconds)
        except Exception:
            log.warning("token count cache unwritable", exc_info=True)
