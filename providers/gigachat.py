"""GigaChat (Sber) over its REST API, `/api/v1`, with OAuth client-credentials tokens.

Wire facts (docs/provider-apis.md §2): the token answer's `expires_at` is in milliseconds;
every token request needs a fresh uuid4 `RqUID`; `blacklist` and `length` come with HTTP
200; the served version is echoed in `model` as `<name>:<version>`; the certificates chain
to the Russian Trusted Root CA, so the config's `ca_bundle` is passed as `verify=`.

Decisions:
- `finish_reason: "blacklist"` raises `ContentFiltered` (permanent, the worker may fall
  back); `"error"` (the model produced invalid function arguments) raises
  `UpstreamServerError` (retryable); `"function_call"` maps to `"tool_calls"`.
- The access token lives in a `TokenCache` (Redis when given, else in-process), refreshed
  before expiry by one caller at a time. A 401 on a call forces one refresh and one retry;
  a second 401 is an `AuthError`.
- A temperature of 0 (not allowed upstream) is sent as 0.001, the deterministic mode.
- `stop` has no counterpart; the API refuses it (400 `unsupported_parameter`).
- Tools are GigaChat functions: `functions[]` {name, description, parameters},
  `function_call` "auto" | "none" | {"name"}. OpenAI's "required" has no counterpart: with
  one tool it is that tool by name; with several the API refuses it before a job exists
  (`providers.features`). An answer's `function_call` {name, arguments (an object)} becomes
  one tool call whose id is the answer's `functions_state_id` (a fresh `call_<hex>` without
  one); an assistant message with a tool call goes back as `function_call` (with
  `functions_state_id` again when the id is one), a `tool` message as a `function` message
  whose `content` is a JSON object in a string, as the API requires (a result that is not
  a JSON object is sent as `{"result": <the text>}`). GigaChat makes one call per answer:
  an assistant message with several calls (from another provider's history) is sent as
  one assistant/function pair per call, each followed by its result.
- `response_format` json_object is sent as `response_format: {"type": "json_object"}`
  (the field the `gigachat` SDK sends; its exact upstream semantics are unconfirmed).
  json_schema is not in the catalogue's GigaChat capabilities, so plans never route it here.
- `stream` sends `stream: true` with `Accept: text/event-stream` and reads the SSE `data:`
  deltas. The event with `finish_reason` (and usage) is held until `data: [DONE]`: a body
  that ends before `[DONE]`, or an error event (`{"status", "message"}`) mid-stream, is
  `StreamInterrupted`. A 200 that is not `text/event-stream` is `MalformedResponse`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import requests

from providers import http
from providers.base import (
    CompletionRequest,
    CompletionResult,
    Message,
    StreamChunk,
    ToolCall,
    Usage,
)
from providers.config import GigaChatConfig
from providers.errors import (
    AuthError,
    BadRequest,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ProviderError,
    StreamInterrupted,
    UpstreamServerError,
)
from storage import keys

MIN_TEMPERATURE = 0.001
TOKEN_MARGIN_SECONDS = 60.0
CONTEXT_HINT = re.compile(r"context|too long|too large|tokens? limit|exceed", re.IGNORECASE)
FINISH_REASONS = {"stop": "stop", "length": "length", "function_call": "tool_calls"}


def token_cache_key(credentials: str) -> str:
    return keys.provider_token("gigachat", "token", credentials)


class GigaChatProvider:
    name = "gigachat"

    def __init__(
        self,
        config: GigaChatConfig,
        *,
        redis: Any = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._session = session or http.make_session(config.pool_size)
        self._timeout = config.timeout
        self._base = config.base_url.rstrip("/")
        self._verify: bool | str = str(config.ca_bundle) if config.ca_bundle else True
        credentials = config.credentials
        key = token_cache_key(credentials.get_secret_value()) if credentials else "unset"
        self._tokens = http.TokenCache(
            key,
            self._fetch_token,
            redis=redis,
            margin=TOKEN_MARGIN_SECONDS,
            lock_timeout=sum(self._timeout) + 5,
            clock=clock,
        )

    # -- the Provider protocol -------------------------------------------------------------

    def complete(self, request: CompletionRequest) -> CompletionResult:
        payload = self._call(
            "POST", "/chat/completions", self.completion_body(request), request.request_id
        )
        return parse_completion(payload, request.upstream_model)

    def stream(self, request: CompletionRequest) -> Iterator[StreamChunk]:
        body = self.completion_body(request) | {"stream": True}
        response = self._exchange(
            "POST", "/chat/completions", body, request.request_id, accept="text/event-stream"
        )
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            response.close()
            raise MalformedResponse(f"A stream answered with Content-Type {content_type!r}.")
        yield from parse_stream(http.stream_lines(response))

    def count_tokens(self, upstream_model: str, messages: tuple[Message, ...]) -> int:
        body = {"model": upstream_model, "input": [m.content for m in messages]}
        payload = self._call("POST", "/tokens/count", body)
        try:
            return sum(int(entry["tokens"]) for entry in payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"/tokens/count: unexpected shape ({exc!r}).") from exc

    def list_models(self) -> list[str]:
        payload = self._call("GET", "/models")
        try:
            return [str(entry["id"]) for entry in payload["data"]]
        except (KeyError, TypeError) as exc:
            raise MalformedResponse(f"/models: unexpected shape ({exc!r}).") from exc

    # -- request building ------------------------------------------------------------------

    def completion_body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.upstream_model,
            "messages": wire_messages(request.messages),
            "stream": False,
        }
        body |= function_fields(request) | format_fields(request)
        if request.temperature is not None:
            body["temperature"] = max(request.temperature, MIN_TEMPERATURE)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.repetition_penalty is not None:
            body["repetition_penalty"] = request.repetition_penalty
        return body

    # -- transport and auth ----------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, request_id: str | None = None) -> Any:
        return http.json_body(self._exchange(method, path, body, request_id))

    def _exchange(
        self,
        method: str,
        path: str,
        body: Any = None,
        request_id: str | None = None,
        *,
        accept: str = "application/json",
    ) -> requests.Response:
        """One authenticated exchange (one token refresh after a 401); HTTP errors raise.
        An event stream is requested with `stream=True`, so its body is read as it comes."""
        headers = {"Accept": accept}
        if request_id:
            headers["X-Request-ID"] = request_id
        token = self._tokens.get()
        response = self._send(method, path, body, headers, token)
        if response.status_code == 401:
            response.close()
            token = self._tokens.refresh(stale=token)
            response = self._send(method, path, body, headers, token)
        if response.status_code >= 400:
            raise error_from_response(response, secret=token)
        return response

    def _send(
        self, method: str, path: str, body: Any, headers: dict[str, str], token: str
    ) -> requests.Response:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if headers["Accept"] == "text/event-stream":
            kwargs["stream"] = True
            headers = headers | {"Cache-Control": "no-store"}
        return http.send(
            self._session,
            method,
            f"{self._base}{path}",
            timeout=self._timeout,
            headers=headers | {"Authorization": f"Bearer {token}"},
            verify=self._verify,
            **kwargs,
        )

    def _fetch_token(self) -> http.Token:
        credentials = self.config.credentials
        if credentials is None:
            raise AuthError("LLMGW_GIGACHAT_CREDENTIALS is not set.")
        headers = {
            "Authorization": f"Basic {credentials.get_secret_value()}",
            "RqUID": str(uuid.uuid4()),
            "Accept": "application/json",
        }
        response = http.send(
            self._session,
            "POST",
            self.config.auth_url,
            timeout=self._timeout,
            headers=headers,
            data={"scope": self.config.scope},
            verify=self._verify,
        )
        if response.status_code >= 400:
            raise oauth_error(response, secret=credentials.get_secret_value())
        return parse_token(http.json_body(response))


# -- request mapping (plain functions, unit-tested directly) --------------------------------

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Normalized messages → native ones; see the module docstring for tool calls."""
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for index, m in enumerate(messages):
        if index in used:
            continue
        if m.role == "tool":
            out.append(function_result(m))
        elif m.tool_calls:
            out += _calls_with_results(messages, index, used)
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _calls_with_results(
    messages: Sequence[Message], index: int, used: set[int]
) -> list[dict[str, Any]]:
    """One assistant message per call; with several, each followed by its own result."""
    message = messages[index]
    if len(message.tool_calls) == 1:
        return [function_call(message, message.tool_calls[0], message.content)]
    results: dict[str, int] = {}
    for later in range(index + 1, len(messages)):
        if messages[later].role != "tool":
            break
        results[messages[later].tool_call_id or ""] = later
    out = []
    for number, call in enumerate(message.tool_calls):
        out.append(function_call(message, call, message.content if number == 0 else ""))
        if call.id in results:
            used.add(results[call.id])
            out.append(function_result(messages[results[call.id]]))
    return out


def function_call(message: Message, call: ToolCall, content: str) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "function_call": {"name": call.name, "arguments": call.arguments},
    }
    if UUID.match(call.id):
        wire["functions_state_id"] = call.id
    return wire


def function_result(message: Message) -> dict[str, Any]:
    try:
        parsed = json.loads(message.content)
    except ValueError:
        parsed = None
    content = (
        message.content
        if isinstance(parsed, dict)
        else json.dumps({"result": message.content}, ensure_ascii=False)
    )
    return {"role": "function", "name": message.name or "", "content": content}


def function_fields(request: CompletionRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if request.tools:
        fields["functions"] = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is None:
        return fields
    if choice.function is not None:
        fields["function_call"] = {"name": choice.function}
    elif choice.mode == "required":
        if len(request.tools) != 1:
            raise BadRequest("GigaChat cannot require a call among several functions.")
        fields["function_call"] = {"name": request.tools[0].name}
    else:
        fields["function_call"] = choice.mode
    return fields


def format_fields(request: CompletionRequest) -> dict[str, Any]:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return {}
    if fmt.type == "json_object":
        return {"response_format": {"type": "json_object"}}
    raise BadRequest("GigaChat has no JSON-schema output.")


# -- response parsing (plain functions, unit-tested directly) -------------------------------


def parse_completion(payload: Any, upstream_model: str) -> CompletionResult:
    try:
        choice = payload["choices"][0]
        reason = choice.get("finish_reason")
        message = choice["message"]
        content = message.get("content") or ""
        calls = parse_function_call(message)
        usage = parse_usage(payload.get("usage") or {})
        served = str(payload.get("model", ""))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"Unexpected chat completion shape ({exc!r}).") from exc
    if reason == "blacklist":
        raise ContentFiltered("GigaChat refused: the request falls under topic restrictions.")
    if reason == "error":
        raise UpstreamServerError("GigaChat answered finish_reason=error.")
    if reason not in FINISH_REASONS:
        raise MalformedResponse(f"Unexpected finish_reason {reason!r}.")
    if reason == "function_call" and not calls:
        raise MalformedResponse("finish_reason function_call without a function_call.")
    return CompletionResult(
        content=content,
        finish_reason=FINISH_REASONS[reason],
        usage=usage,
        model_version=served.split(":", 1)[-1],
        upstream_model=upstream_model,
        raw=payload,
        tool_calls=calls,
    )


def parse_function_call(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """A message's `function_call` {name, arguments (object)} → one call (or none)."""
    call = message.get("function_call")
    if call is None:
        return ()
    arguments = call.get("arguments") or {}
    if isinstance(arguments, str):  # lenient: some gateways send OpenAI's string form
        arguments = json.loads(arguments)
    if not isinstance(arguments, dict):
        raise ValueError("function_call.arguments is not an object")
    state = message.get("functions_state_id")
    call_id = str(state) if state else f"call_{uuid.uuid4().hex[:24]}"
    return (ToolCall(call_id, str(call["name"]), arguments),)


def parse_stream(lines: Iterable[str]) -> Iterator[StreamChunk]:
    """SSE `data:` events → deltas; the event with `finish_reason` is the final chunk, given
    out only once `data: [DONE]` confirms the stream ended as it should."""
    final: StreamChunk | None = None
    calls: tuple[ToolCall, ...] = ()
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments, `event:`/`id:` fields
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            if final is None:
                raise StreamInterrupted("The stream said [DONE] before a final chunk.")
            final = replace(final, tool_calls=final.tool_calls or calls)
            if final.finish_reason == "tool_calls" and not final.tool_calls:
                raise MalformedResponse("finish_reason function_call without a function_call.")
            yield final
            return
        chunk = parse_event(data)
        calls = chunk.tool_calls or calls  # a function call comes whole, in one delta
        if chunk.is_final:
            final = replace(chunk, tool_calls=chunk.tool_calls or calls)
        elif chunk.delta:
            yield replace(chunk, tool_calls=())
    raise StreamInterrupted("The stream ended without [DONE].")


def parse_event(data: str) -> StreamChunk:
    """One event's JSON → a chunk; an event without `choices` is an error sent mid-stream."""
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise MalformedResponse(f"A stream event is not JSON: {data[:120]!r}") from exc
    if isinstance(event, dict) and "choices" not in event and "message" in event:
        raise StreamInterrupted(f"The stream ended with an error: {event.get('message')}")
    try:
        choice = event["choices"][0]
        delta = choice.get("delta") or {}
        text = str(delta.get("content") or "")
        calls = parse_function_call(delta)
        reason = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"Unexpected stream event shape ({exc!r}).") from exc
    if reason is None:
        return StreamChunk(text, tool_calls=calls)
    if reason == "function_call" and not calls:  # the call came in an earlier delta
        return _final(event, text, reason, delta)
    result = parse_completion(_as_completion(event, text, reason, delta), "")
    usage, version = result.usage, result.model_version
    return StreamChunk(text, result.finish_reason, usage, version, result.tool_calls)


def _final(event: dict[str, Any], text: str, reason: str, delta: dict[str, Any]) -> StreamChunk:
    """A function_call finish whose call came before: judged once the stream has ended."""
    try:
        usage = parse_usage(event.get("usage") or {})
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"Unexpected stream event shape ({exc!r}).") from exc
    version = str(event.get("model", "")).split(":", 1)[-1]
    return StreamChunk(text, FINISH_REASONS[reason], usage, version)


def _as_completion(
    event: dict[str, Any], text: str, reason: str, delta: dict[str, Any]
) -> dict[str, Any]:
    """The final event in the shape of a whole answer, so both are judged the same way."""
    message = {"content": text} | {k: v for k, v in delta.items() if k == "function_call"}
    if "functions_state_id" in delta:
        message["functions_state_id"] = delta["functions_state_id"]
    choice = {"message": message, "finish_reason": reason}
    return {"choices": [choice], "usage": event.get("usage"), "model": event.get("model", "")}


def parse_usage(usage: dict[str, Any]) -> Usage:
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    total = int(usage.get("total_tokens", prompt + completion))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def parse_token(payload: Any) -> http.Token:
    """`{"access_token", "expires_at"}`; `expires_at` is Unix milliseconds.

    A 10-digit value (one doc example shows seconds) is taken as seconds rather than as a
    moment in 1970, which would make every token look expired.
    """
    try:
        token, expires_at = str(payload["access_token"]), float(payload["expires_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedResponse(f"OAuth: unexpected token shape ({exc!r}).") from exc
    return http.Token(token, expires_at / 1000 if expires_at > 1e11 else expires_at)


def error_from_response(response: requests.Response, *, secret: str = "") -> ProviderError:
    """An API error (`{"status", "message"}` or any body at all) → the hierarchy."""
    status, message = response.status_code, http.redact(_error_message(response), secret)
    if status == 422 and CONTEXT_HINT.search(message):
        return ContextTooLong(message, status=status)
    return http.error_for_status(status, message, retry_after_s=http.retry_after(response))


def oauth_error(response: requests.Response, *, secret: str = "") -> ProviderError:
    """OAuth failures: bad key or scope are permanent `AuthError`s; 429/5xx stay retryable."""
    error = http.error_for_status(
        response.status_code,
        f"GigaChat OAuth failed: {http.redact(_error_message(response), secret)}",
        retry_after_s=http.retry_after(response),
    )
    return error if error.retryable else AuthError(error.message, status=error.status)


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"HTTP {response.status_code}: {response.text[:200] or response.reason}"
