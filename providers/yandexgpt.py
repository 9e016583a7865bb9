"""YandexGPT (Yandex Cloud AI Studio) over the native REST API, `foundationModels/v1`.

Wire facts (docs/provider-apis.md §1): messages carry `text`, not `content`; every int64
(`maxTokens`, usage counters) is a JSON string; the sync body is wrapped in `result`, an
Operation is not; a content-filter refusal and a truncation are HTTP 200 with a status.

Decisions:
- `ALTERNATIVE_STATUS_CONTENT_FILTER` raises `ContentFiltered` (permanent) instead of
  returning `finish_reason="content_filter"`, so the worker can fall back to another
  model; the refusal text is not a useful answer.
- `top_p` has no native counterpart and is ignored; `stop` has none either, and the API
  refuses it (400 `unsupported_parameter`) before a job exists.
- Tools (proto `tools`, `toolChoice`, `parallelToolCalls`): an assistant message with
  tool calls becomes a `toolCallList` message (its text, if any, a text message before it,
  since a message holds exactly one of text / toolCallList / toolResultList); consecutive
  `tool` messages become one `user` message with a `toolResultList` of
  `functionResult {name, content}`. A `TOOL_CALLS` answer's calls get ids made here
  (`call_<hex>`, Yandex has none); integer-typed arguments that come back as floats (`5.0`,
  as recorded from the real service) are given back as integers.
- `response_format` json_object → `jsonObject: true`, json_schema → `jsonSchema.schema`.
- `temperature` is 0–1 upstream while llmgw accepts the OpenAI range 0–2: values above 1 are
  sent as 1 (the most varied the model allows) rather than failing the job.
- Errors are classified by HTTP code, refined by message hints the docs list: a 400
  "Number of input tokens must be no more than" is `ContextTooLong`, a 400 "invalid
  model_uri"/"model … not found" is `ModelNotFound` (Yandex answers 400 for unknown models).
- `stream` posts the same completion with `completionOptions.stream: true` and turns the
  NDJSON lines, each holding the whole text so far, into deltas. A line that is not an
  extension of the text already sent is `MalformedResponse` (a delta cannot be taken
  back); a body that ends without FINAL/TRUNCATED_FINAL, or a mid-stream `{"error": …}`
  line, is `StreamInterrupted`; CONTENT_FILTER raises `ContentFiltered` as in `complete`.
- `list_models` asks `GET /v1/models` and lets failures raise: the routing catalogue is
  the source of truth, a static fallback list here would only hide an outage.
- No retries here (the worker owns them), except one re-authentication after a 401 when
  IAM tokens come from an OAuth-token exchange, and polling on past a transient failure
  of one poll of an async operation (resubmitting would pay for the work twice).
"""

from __future__ import annotations

import contextlib
import json as json_lib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import requests

from providers import http
from providers.base import (
    CompletionRequest,
    CompletionResult,
    Message,
    StreamChunk,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from providers.config import YandexGPTConfig
from providers.errors import (
    AuthError,
    BadRequest,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    RetryableError,
    StreamInterrupted,
    UpstreamServerError,
)
from storage import keys

CONTEXT_TOO_LONG = re.compile(r"number of input tokens must be no more than", re.IGNORECASE)
# A model or branch that does not exist (or was retired) answers 400, not 404 [doc].
UNKNOWN_MODEL = re.compile(r"invalid model_uri|model .* not found", re.IGNORECASE)
FINISH_REASONS = {"FINAL": "stop", "TRUNCATED_FINAL": "length", "TOOL_CALLS": "tool_calls"}
# google.rpc.Code → the HTTP status grpc-gateway would have answered with.
GRPC_TO_HTTP = {3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 11: 400, 12: 501, 16: 401, 4: 504}
IAM_REFRESH_PERIOD = 3600.0  # the official SDK refreshes hourly although tokens live 12 h
MAX_TEMPERATURE = 1.0  # the upstream range is 0-1
log = logging.getLogger(__name__)


class YandexGPTProvider:
    name = "yandexgpt"

    def __init__(
        self,
        config: YandexGPTConfig,
        *,
        session: requests.Session | None = None,
        redis: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._session = session or http.make_session(config.pool_size)
        self._timeout = config.timeout
        self._base = config.base_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._iam = self._iam_cache(redis)

    # -- the Provider protocol -------------------------------------------------------------

    def complete(self, request: CompletionRequest) -> CompletionResult:
        body = self.completion_body(request)
        if self._use_async(request):
            return self._complete_async(body, request)
        url = f"{self._base}/foundationModels/v1/completion"
        payload = self._call("POST", url, json=body, request_id=request.request_id)
        return parse_completion(_field(payload, "result"), request.upstream_model, request.tools)

    def stream(self, request: CompletionRequest) -> Iterator[StreamChunk]:
        body = self.completion_body(request)
        body["completionOptions"]["stream"] = True
        url = f"{self._base}/foundationModels/v1/completion"
        response = self._exchange(
            "POST", url, json=body, request_id=request.request_id, stream=True
        )
        yield from parse_stream(http.stream_lines(response), request.tools)

    def count_tokens(self, upstream_model: str, messages: tuple[Message, ...]) -> int:
        body = self.completion_body(CompletionRequest(upstream_model, messages))
        url = f"{self._base}/foundationModels/v1/tokenizeCompletion"
        payload = self._call("POST", url, json=body)
        tokens = _field(payload, "tokens")
        if not isinstance(tokens, list):
            raise MalformedResponse("tokenizeCompletion: `tokens` is not a list.")
        return len(tokens)

    def list_models(self) -> list[str]:
        headers = {"OpenAI-Project": self._folder()}
        payload = self._call("GET", f"{self._base}/v1/models", headers=headers)
        try:
            ids = [entry["id"] for entry in payload["data"]]
        except (KeyError, TypeError) as exc:
            raise MalformedResponse(f"/v1/models: unexpected shape ({exc!r}).") from exc
        prefix = f"gpt://{self._folder()}/"
        return [i.removeprefix(prefix) for i in ids if isinstance(i, str)]

    # -- request building ------------------------------------------------------------------

    def completion_body(self, request: CompletionRequest) -> dict[str, Any]:
        options: dict[str, Any] = {"stream": False}
        if request.temperature is not None:
            options["temperature"] = min(request.temperature, MAX_TEMPERATURE)
        if request.max_tokens is not None:
            options["maxTokens"] = str(request.max_tokens)  # int64 → string in REST JSON
        body = {
            "modelUri": self.model_uri(request.upstream_model),
            "completionOptions": options,
            "messages": wire_messages(request.messages),
        }
        return body | tool_fields(request) | format_fields(request)

    def model_uri(self, upstream_model: str) -> str:
        if upstream_model.startswith("gpt://"):
            return upstream_model
        return f"gpt://{self._folder()}/{upstream_model}"

    def _folder(self) -> str:
        if not self.config.folder_id:
            raise BadRequest("LLMGW_YANDEXGPT_FOLDER_ID is not set.")
        return self.config.folder_id

    def _use_async(self, request: CompletionRequest) -> bool:
        threshold = self.config.async_threshold_tokens
        if threshold is None:
            return False
        prompt_chars = sum(len(m.content) for m in request.messages)
        return prompt_chars // 4 + (request.max_tokens or 0) >= threshold

    # -- async completion ------------------------------------------------------------------

    def _complete_async(self, body: dict[str, Any], request: CompletionRequest) -> CompletionResult:
        url = f"{self._base}/foundationModels/v1/completionAsync"
        operation = self._call("POST", url, json=body, request_id=request.request_id)
        operation = self._wait_for(operation)
        if operation.get("error"):
            raise operation_error(operation["error"])
        return parse_completion(
            _field(operation, "response"), request.upstream_model, request.tools
        )

    def _wait_for(self, operation: dict[str, Any]) -> dict[str, Any]:
        op_id = _field(operation, "id")
        deadline = self._clock() + self.config.async_deadline_seconds
        while not operation.get("done"):
            if self._clock() >= deadline:
                self._cancel(op_id)
                raise ProviderTimeout(f"Operation {op_id} was not done before the deadline.")
            self._sleep(self.config.async_poll_interval)
            operation = self._poll(op_id, operation)
        return operation

    def _poll(self, op_id: str, last: dict[str, Any]) -> dict[str, Any]:
        """The operation's new state; a transient poll failure keeps the last one (the
        submitted work is still running upstream, and the deadline bounds the wait)."""
        try:
            return self._call("GET", f"{self._operations_url()}/{op_id}")
        except ModelNotFound as exc:  # an unknown or expired operation, not a model
            raise UpstreamServerError(f"Operation {op_id} vanished: {exc}", status=404) from exc
        except RetryableError as exc:
            log.warning("operation %s: poll failed (%s), polling on", op_id, exc.reason)
            return last

    def _cancel(self, op_id: str) -> None:
        with contextlib.suppress(ProviderError):
            self._call("GET", f"{self._operations_url()}/{op_id}:cancel")

    def _operations_url(self) -> str:
        return f"{self.config.operations_url.rstrip('/')}/operations"

    # -- transport and auth ----------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> Any:
        response = self._exchange(method, url, json=json, headers=headers, request_id=request_id)
        return http.json_body(response)

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One authenticated exchange (one re-authentication after a 401); HTTP errors raise."""
        extra = dict(headers or {})
        if request_id:
            extra["x-client-request-id"] = request_id
        if not self.config.data_logging:
            extra["x-data-logging-enabled"] = "false"
        credential, response = self._send(method, url, json, extra, stale=None, stream=stream)
        if response.status_code == 401 and self._iam is not None:
            response.close()
            credential, response = self._send(
                method, url, json, extra, stale=credential, stream=stream
            )
        if response.status_code >= 400:
            raise error_from_response(response, secret=credential.split(" ", 1)[-1])
        return response

    def _send(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        *,
        stale: str | None,
        stream: bool = False,
    ) -> tuple[str, requests.Response]:
        credential = self._credential(stale)
        auth = {"Authorization": credential}
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        if stream:
            kwargs["stream"] = True
        response = http.send(
            self._session, method, url, timeout=self._timeout, headers=auth | headers, **kwargs
        )
        return credential, response

    def _credential(self, stale: str | None) -> str:
        """The `Authorization` value; with `stale`, a freshly exchanged IAM token."""
        api_key = self.config.api_key
        if api_key is not None:
            return f"Api-Key {api_key.get_secret_value()}"
        if self._iam is not None:
            token = self._iam.refresh(stale.removeprefix("Bearer ")) if stale else self._iam.get()
            return f"Bearer {token}"
        iam_token = self.config.iam_token
        if iam_token is not None:
            return f"Bearer {iam_token.get_secret_value()}"
        raise AuthError("No YandexGPT credentials configured (API key, OAuth or IAM token).")

    def _iam_cache(self, redis: Any) -> http.TokenCache | None:
        oauth = self.config.oauth_token
        if self.config.api_key is not None or oauth is None:
            return None
        return http.TokenCache(
            keys.provider_token("yandexgpt", "iam", oauth.get_secret_value()),
            self._exchange_iam_token,
            redis=redis,
            lock_timeout=sum(self._timeout) + 5,
        )

    def _exchange_iam_token(self) -> http.Token:
        oauth = self.config.oauth_token
        assert oauth is not None  # only called when configured
        url = f"{self.config.iam_url.rstrip('/')}/iam/v1/tokens"
        body = {"yandexPassportOauthToken": oauth.get_secret_value()}
        response = http.send(self._session, "POST", url, timeout=self._timeout, json=body)
        if response.status_code >= 400:
            error = error_from_response(response, secret=oauth.get_secret_value())
            if not error.retryable:
                raise AuthError(f"IAM token exchange failed: {error.message}", status=error.status)
            raise error
        payload = http.json_body(response)
        expires_at = parse_rfc3339(_field(payload, "expiresAt"))
        token = str(_field(payload, "iamToken"))
        return http.Token(token, min(expires_at, time.time() + IAM_REFRESH_PERIOD))


# -- request mapping (plain functions, unit-tested directly) --------------------------------

TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "REQUIRED"}


def wire_messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Normalized messages → native ones (see the module docstring for tool messages)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            result = {"functionResult": {"name": m.name or "", "content": m.content}}
            if out and "toolResultList" in out[-1]:
                out[-1]["toolResultList"]["toolResults"].append(result)
            else:
                out.append({"role": "user", "toolResultList": {"toolResults": [result]}})
            continue
        if m.content or not m.tool_calls:
            out.append({"role": m.role, "text": m.content})
        if m.tool_calls:
            calls = [
                {"functionCall": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls
            ]
            out.append({"role": "assistant", "toolCallList": {"toolCalls": calls}})
    return out


def tool_fields(request: CompletionRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if request.tools:
        fields["tools"] = [{"function": _function(tool)} for tool in request.tools]
    if request.tool_choice is not None:
        fields["toolChoice"] = tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None and request.tools:
        fields["parallelToolCalls"] = request.parallel_tool_calls
    return fields


def _function(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return function


def tool_choice(choice: ToolChoice) -> dict[str, str]:
    if choice.function is not None:
        return {"functionName": choice.function}
    return {"mode": TOOL_CHOICE_MODES[choice.mode]}


def format_fields(request: CompletionRequest) -> dict[str, Any]:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return {}
    if fmt.type == "json_object":
        return {"jsonObject": True}
    return {"jsonSchema": {"schema": fmt.schema or {}}}


# -- response parsing (plain functions, unit-tested directly) -------------------------------


def parse_completion(
    result: Any, upstream_model: str, tools: tuple[Tool, ...] = ()
) -> CompletionResult:
    """A `CompletionResponse` (sync `result` or operation `response`) → `CompletionResult`."""
    try:
        alternative = result["alternatives"][0]
        status = str(alternative.get("status", "")).removeprefix("ALTERNATIVE_STATUS_")
        message = alternative.get("message", {})
        text = message.get("text", "")
        calls = parse_tool_calls(message.get("toolCallList"), tools)
        usage = parse_usage(result.get("usage", {}))
        version = str(result.get("modelVersion", ""))
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"Unexpected completion shape ({exc!r}).") from exc
    if status == "CONTENT_FILTER":
        raise ContentFiltered("YandexGPT refused: the prompt or answer hit the content filter.")
    if status not in FINISH_REASONS:
        raise MalformedResponse(f"Unexpected alternative status {status!r}.")
    if status == "TOOL_CALLS" and not calls:
        raise MalformedResponse("A TOOL_CALLS answer without tool calls.")
    return CompletionResult(
        content=text,
        finish_reason=FINISH_REASONS[status],
        usage=usage,
        model_version=version,
        upstream_model=upstream_model,
        raw=result,
        tool_calls=calls,
    )


def parse_tool_calls(tool_call_list: Any, tools: tuple[Tool, ...]) -> tuple[ToolCall, ...]:
    """`toolCallList.toolCalls[].functionCall {name, arguments}` → calls with fresh ids."""
    if tool_call_list is None:
        return ()
    calls = []
    for entry in tool_call_list["toolCalls"]:
        function = entry["functionCall"]
        arguments = function.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise ValueError("functionCall.arguments is not an object")
        name = str(function["name"])
        calls.append(ToolCall(new_call_id(), name, integral(arguments, _schema(tools, name))))
    return tuple(calls)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _schema(tools: tuple[Tool, ...], name: str) -> dict[str, Any]:
    return next((tool.parameters for tool in tools if tool.name == name), {})


def integral(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Floats with no fraction back to ints where the tool's schema says `integer`."""
    properties = schema.get("properties") or {}
    fixed = dict(arguments)
    for name, value in arguments.items():
        spec = properties.get(name)
        wants_int = isinstance(spec, dict) and spec.get("type") == "integer"
        if wants_int and isinstance(value, float) and value.is_integer():
            fixed[name] = int(value)
    return fixed


def parse_stream(lines: Iterable[str], tools: tuple[Tool, ...] = ()) -> Iterator[StreamChunk]:
    """NDJSON lines, each `{"result": …}` with the whole text so far → deltas; the line with
    a final status ends the stream (anything after it is not read). A TOOL_CALLS line ends
    it with the calls (its message holds no text)."""
    sent = ""
    for line in lines:
        if not line.strip():
            continue
        result = stream_result(line)
        chunk = parse_completion(result, "", tools) if is_final(result) else None
        if chunk is not None and chunk.tool_calls:
            usage, version = chunk.usage, chunk.model_version
            yield StreamChunk("", chunk.finish_reason, usage, version, chunk.tool_calls)
            return
        text = chunk.content if chunk else _partial_text(result)
        if not text.startswith(sent):
            raise MalformedResponse("A stream chunk does not extend the text already received.")
        delta, sent = text[len(sent) :], text
        if chunk is not None:
            yield StreamChunk(delta, chunk.finish_reason, chunk.usage, chunk.model_version)
            return
        if delta:
            yield StreamChunk(delta)
    raise StreamInterrupted("The stream ended without a final status.")


def stream_result(line: str) -> Any:
    """One stream line's `result`; an error line means the stream broke off upstream."""
    try:
        payload = json_lib.loads(line)
    except ValueError as exc:
        raise MalformedResponse(f"A stream line is not JSON: {line[:120]!r}") from exc
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        message = payload["error"].get("message", "")
        raise StreamInterrupted(f"The stream ended with an error: {message}")
    return _field(payload, "result")


def is_final(result: Any) -> bool:
    status = _alternative(result).get("status", "")
    return str(status).removeprefix("ALTERNATIVE_STATUS_") not in ("PARTIAL", "UNSPECIFIED", "")


def _partial_text(result: Any) -> str:
    message = _alternative(result).get("message")
    text = message.get("text", "") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise MalformedResponse("A stream chunk has no text.")
    return text


def _alternative(result: Any) -> dict[str, Any]:
    try:
        alternative = result["alternatives"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedResponse(f"Unexpected stream chunk shape ({exc!r}).") from exc
    if not isinstance(alternative, dict):
        raise MalformedResponse("Unexpected stream chunk shape (alternative).")
    return alternative


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Usage counters arrive as int64 strings; a missing total is the sum."""
    prompt = int(usage.get("inputTextTokens", 0))
    completion = int(usage.get("completionTokens", 0))
    total = int(usage.get("totalTokens", prompt + completion))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def error_from_response(response: requests.Response, *, secret: str = "") -> ProviderError:
    """Map an error answer (grpc-gateway envelope, or any body at all) to the hierarchy.

    Upstream messages may echo the credential (`Unknown api key '…'`): `secret` is masked.
    """
    message = http.redact(_error_message(response), secret)
    return classify(response.status_code, message, retry_after_s=http.retry_after(response))


def operation_error(status: Any) -> ProviderError:
    """A finished operation's `error` (google.rpc.Status) → the hierarchy, via its HTTP twin."""
    code = status.get("code") if isinstance(status, dict) else None
    message = str(status.get("message", "")) if isinstance(status, dict) else str(status)
    http_status = GRPC_TO_HTTP.get(code, 500) if isinstance(code, int) else 500
    return classify(http_status, f"Async completion failed: {message}")


def classify(status: int, message: str, *, retry_after_s: float | None = None) -> ProviderError:
    if status == 400 and CONTEXT_TOO_LONG.search(message):
        return ContextTooLong(message, status=status)
    if status == 400 and UNKNOWN_MODEL.search(message):
        return ModelNotFound(message, status=status)
    return http.error_for_status(status, message, retry_after_s=retry_after_s)


def parse_rfc3339(value: Any) -> float:
    """`2024-06-06T12:45:48.123456789Z` → Unix seconds (sub-microsecond digits dropped)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value)).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise MalformedResponse(f"Bad timestamp {value!r}.") from exc


def _error_message(response: requests.Response) -> str:
    with contextlib.suppress(ValueError):
        body = response.json()
        envelope = body.get("error") if isinstance(body, dict) else None
        if isinstance(envelope, dict) and envelope.get("message"):
            return str(envelope["message"])
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    return f"HTTP {response.status_code}: {response.text[:200] or response.reason}"


def _field(payload: Any, name: str) -> Any:
    if not isinstance(payload, dict) or name not in payload:
        raise MalformedResponse(f"Response has no `{name}`.")
    return payload[name]
