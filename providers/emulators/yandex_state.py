"""YandexGPT emulator state: configuration, credentials, IAM tokens, operations, versions."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from providers.emulators import unconfirmed
from providers.emulators import yandex_wire as wire
from providers.emulators.app import EmulatorState
from providers.emulators.catalogue import YANDEX_MODELS, yandex_versions
from providers.emulators.common import (
    ConcurrencySlot,
    EmulatorError,
    prune_expired,
    retry_after_header,
)
from providers.emulators.faults import apply_transport_fault

HEADERS = ("x-request-id", "x-server-trace-id")


@dataclass
class YandexEmulatorConfig:
    api_keys: set[str] = field(default_factory=lambda: {"emu-yandex-key"})
    expired_api_keys: set[str] = field(default_factory=set)
    oauth_tokens: set[str] = field(default_factory=lambda: {"emu-oauth-token"})
    folder_id: str = "b1gemulatorfolder"
    latency: float = 0.0
    latency_jitter: float = 0.0
    operation_delay: float = 0.5
    operation_retention: float = 3 * 24 * 3600.0  # results are kept 3 days, then 404
    max_concurrency: int = 10
    iam_token_ttl: float = 12 * 3600.0
    stream_chunk_delay: float = 0.0
    concurrency_retry_after: float | None = unconfirmed.YANDEX_CONCURRENCY_RETRY_AFTER
    fault_seed: int | None = None  # the draws of fault rules with a probability (tests)


@dataclass
class Operation:
    meta: dict
    ready_at: float
    result: dict


class YandexState(EmulatorState):
    def __init__(self, config: YandexEmulatorConfig):
        super().__init__(config, yandex_versions())
        self.config = config
        self.iam_tokens: dict[str, tuple[str, float]] = {}
        self.operations: dict[str, Operation] = {}

    def authenticate(self, request: web.Request) -> str:
        """The caller's credential id, or a 401 in the Yandex envelope."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        value = value.strip()
        if scheme == "Api-Key" or (scheme == "Bearer" and not value.startswith("t1.")):
            return self._check_api_key(value)
        if scheme == "Bearer":
            return self._check_iam_token(value)
        raise EmulatorError(401, "The request is unauthenticated: no Authorization header")

    def _check_api_key(self, key: str) -> str:
        if key in self.config.api_keys:
            return f"api-key:{key}"
        if key in self.config.expired_api_keys:
            raise EmulatorError(401, "The apikey has expired")
        raise EmulatorError(401, f"Unknown api key '{key[:8]}…'")

    def _check_iam_token(self, token: str) -> str:
        subject, expires = self.iam_tokens.get(token, (None, 0.0))
        if subject is None:
            raise EmulatorError(401, "The token is invalid")
        if expires <= time.time():
            raise EmulatorError(401, "The token has expired")
        return f"iam:{subject}"

    def issue_iam_token(self, subject: str) -> dict:
        token = "t1." + secrets.token_urlsafe(48)
        expires = time.time() + self.config.iam_token_ttl
        prune_expired(self.iam_tokens, lambda entry: entry[1] <= time.time())
        self.iam_tokens[token] = (subject, expires)
        self.runtime.tokens_issued += 1
        return {"iamToken": token, "expiresAt": wire.rfc3339(expires)}

    def slot(self, credential: str) -> ConcurrencySlot:
        limit = self.config.max_concurrency
        message = wire.MESSAGES[429].replace("allowed 10", f"allowed {limit}")
        headers = retry_after_header(self.config.concurrency_retry_after)
        reject = EmulatorError(429, message, headers=headers)
        return ConcurrencySlot(self.runtime, credential, limit, reject)

    def version(self, ref: wire.ModelRef) -> str:
        """The served version; a retired one answers like an unknown model."""
        version = self.control.versions.get(ref.model, ref.branch)
        if version is None:
            status = unconfirmed.YANDEX_UNKNOWN_MODEL_STATUS
            raise EmulatorError(status, f"Model {ref.model}/{ref.branch} is not available")
        return version

    async def run_faults(self, request: web.Request, ref: wire.ModelRef, credential: str):
        """Count the call, apply any transport fault and the latency; return (fault, broken)."""
        self.version(ref)
        self.runtime.models[f"{ref.model}/{ref.branch}"] += 1
        fault = self.control.faults.take(ref.model, ref.branch, credential)
        broken = await apply_transport_fault(request, fault, wire.MESSAGES)
        if broken is None:
            await self.runtime.sleep_latency()
        return fault, broken

    def generate(self, call: wire.CompletionCall, fault) -> wire.Outcome:
        context = YANDEX_MODELS[call.ref.model]["context"]
        return wire.generate(call, context, self.version(call.ref), fault)


STATE = web.AppKey("yandex_state", YandexState)
