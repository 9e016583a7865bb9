"""YandexGPT wire format: request parsing and validation, answer generation, response bodies.

Plain functions over dicts; the aiohttp handlers live in ``yandexgpt.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus

from aiohttp import web

from providers.emulators import unconfirmed
from providers.emulators.catalogue import YANDEX_MODELS
from providers.emulators.common import (
    CONTENT_FILTER_TRIGGER,
    EmulatorError,
    compose_answer,
    count_tokens,
    dumps,
    json_response,
    token_id,
    token_pieces,
    truncate_tokens,
)
from providers.emulators.faults import FaultRule
from providers.emulators.tools import json_answer, pick_tool, sample_arguments

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
MESSAGES = {
    400: "Bad request",
    401: "Unauthenticated",
    402: "Payment required",
    403: "Permission denied",
    404: "Not found",
    429: "ai.textGenerationCompletionSessionsCount.count gauge quota limit exceed: "
    "allowed 10 requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Deadline exceeded",
}
REFUSAL = "К сожалению, я не могу ничего сказать об этом. Давайте сменим тему?"
COMPLETION_TYPE = "type.googleapis.com/yandex.cloud.ai.foundation_models.v1.CompletionResponse"
_URI = re.compile(r"^gpt://(?P<folder>[^/]+)/(?P<model>[^/@]+)(?:/(?P<branch>[^/@]+))?(@.+)?$")
ROLE_MARKERS = {"system": "Система:", "user": "Пользователь:", "assistant": "Ассистент:"}


def render_error(error: EmulatorError) -> web.Response:
    return json_response(error_body(error.status, error.message), status=error.status)


def error_body(status: int, message: str) -> dict:
    return {
        "error": {
            "grpcCode": GRPC_CODES.get(status, 2),
            "httpCode": status,
            "message": message,
            "httpStatus": _reason(status),
            "details": [],
        }
    }


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class ModelRef:
    folder: str
    model: str
    branch: str

    @property
    def uri(self) -> str:
        return f"gpt://{self.folder}/{self.model}/{self.branch}"


def parse_model_uri(uri: object, folder_id: str) -> ModelRef:
    match = _URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise EmulatorError(400, f"Failed to parse model URI: {uri!r}")
    ref = ModelRef(match["folder"], match["model"], match["branch"] or "latest")
    if ref.folder != folder_id:
        raise EmulatorError(
            unconfirmed.YANDEX_FOLDER_MISMATCH_STATUS,
            f"Specified folder ID '{ref.folder}' does not match with service account folder",
        )
    model = YANDEX_MODELS.get(ref.model)
    if model is None or ref.branch not in model["versions"]:
        status = unconfirmed.YANDEX_UNKNOWN_MODEL_STATUS
        raise EmulatorError(status, f"Model {ref.model}/{ref.branch} not found: invalid model_uri")
    return ref


@dataclass
class CompletionCall:
    ref: ModelRef
    messages: list[dict]
    stream: bool
    max_tokens: int | None
    input_tokens: int
    tools: list[dict] = field(default_factory=list)  # the inner "function" objects
    tool_choice: dict | None = None  # {"mode": "NONE"|"AUTO"|"REQUIRED"} or {"functionName"}
    # JSON output: None for text, {} for jsonObject, {"schema": …} for jsonSchema.
    json_format: dict | None = None


def parse_completion(body: dict, folder_id: str) -> CompletionCall:
    ref = parse_model_uri(body.get("modelUri"), folder_id)
    messages = parse_messages(body.get("messages"))
    options = body.get("completionOptions") or {}
    if not isinstance(options, dict):
        raise EmulatorError(400, "completionOptions must be an object")
    _check_temperature(options.get("temperature"))
    return CompletionCall(
        ref=ref,
        messages=messages,
        stream=bool(options.get("stream", False)),
        max_tokens=parse_max_tokens(options.get("maxTokens")),
        input_tokens=prompt_token_count(messages),
        tools=parse_tools(body.get("tools")),
        tool_choice=body.get("toolChoice") if isinstance(body.get("toolChoice"), dict) else None,
        json_format=parse_json_format(body),
    )


def parse_json_format(body: dict) -> dict | None:
    """`jsonObject: true` or `jsonSchema: {"schema": {…}}`, one or the other (a proto oneof)."""
    as_object, as_schema = body.get("jsonObject"), body.get("jsonSchema")
    if as_object is not None and as_schema is not None:
        raise EmulatorError(400, "Only one of jsonObject and jsonSchema may be set")
    if as_schema is not None:
        if not isinstance(as_schema, dict) or not isinstance(as_schema.get("schema"), dict):
            raise EmulatorError(400, 'jsonSchema must be {"schema": {...}}')
        return {"schema": as_schema["schema"]}
    if as_object is not None and not isinstance(as_object, bool):
        raise EmulatorError(400, "jsonObject must be a boolean")
    return {} if as_object else None


def parse_tools(tools: object) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list) or not all(_is_function_tool(t) for t in tools):
        raise EmulatorError(400, 'tools: each tool must be {"function": {"name": ...}}')
    return [tool["function"] for tool in tools]


def _is_function_tool(tool: object) -> bool:
    return isinstance(tool, dict) and isinstance((tool.get("function") or {}).get("name"), str)


def parse_messages(messages: object) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise EmulatorError(400, "messages: value must contain at least 1 item")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLE_MARKERS:
            raise EmulatorError(400, "messages: each message needs a role system|user|assistant")
        parts = [k for k in ("text", "toolCallList", "toolResultList") if k in message]
        if len(parts) != 1:
            raise EmulatorError(400, "messages: exactly one of text, toolCallList, toolResultList")
    return messages


def _check_temperature(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        raise EmulatorError(400, f"temperature must be in [0, 1], got {value!r}")


def parse_max_tokens(value: object) -> int | None:
    """int64 arrives as a JSON string (proto mapping) or, from lenient clients, a number."""
    if value is None:
        return None
    try:
        number = (
            int(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        )
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise EmulatorError(400, f"maxTokens must be a positive int64, got {value!r}")
    return number


def message_text(message: dict) -> str:
    text = message.get("text")
    return text if isinstance(text, str) else ""


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def tool_results_text(message: dict) -> str:
    """The contents of a `toolResultList` message, joined (what the answer then echoes)."""
    results = (message.get("toolResultList") or {}).get("toolResults") or []
    contents = [str((r.get("functionResult") or {}).get("content", "")) for r in results]
    return " ".join(c for c in contents if c)


def completion_tokens(messages: list[dict]) -> list[dict]:
    """``tokenizeCompletion``: the prompt with its template tokens; usage counts the same."""
    tokens = [special("<s>")]
    for message in messages:
        tokens.append(special(ROLE_MARKERS[message["role"]]))
        tokens.extend(text_tokens(message_text(message)))
        tokens.append(special("[NL]"))
    tokens += [special(ROLE_MARKERS["assistant"]), special("[SEP]")]
    return tokens


def prompt_token_count(messages: list[dict]) -> int:
    """``len(completion_tokens(messages))`` without building the tokens: 1 + 2 per message
    (role marker, [NL]) + the text's tokens + 2 (assistant marker, [SEP])."""
    return 3 + sum(2 + count_tokens(message_text(m)) for m in messages)


def text_tokens(text: str) -> list[dict]:
    return [
        {"id": str(token_id(piece)), "text": piece.replace(" ", "▁")}
        for piece in token_pieces(text)
    ]


def special(text: str) -> dict:
    return {"id": str(token_id(text) % 100), "text": text, "special": True}


@dataclass
class Outcome:
    text: str
    status: str
    input_tokens: int
    completion_tokens: int
    version: str
    tool_calls: list[dict] | None = None  # [{"name", "arguments": {...}}]


def generate(call: CompletionCall, context: int, version: str, fault: FaultRule | None):
    kind = fault.kind if fault else None
    if kind == "context_length" or call.input_tokens > context:
        raise context_error(context, max(call.input_tokens, context + 1), call.ref.folder)
    prompt = last_user_text(call.messages)
    if kind == "content_filter" or CONTENT_FILTER_TRIGGER in prompt:
        return _outcome(call, REFUSAL, "ALTERNATIVE_STATUS_CONTENT_FILTER", version)
    tool_calls = plan_tool_calls(call, prompt)
    if tool_calls:
        tokens = count_tokens(dumps(tool_calls))
        status = "ALTERNATIVE_STATUS_TOOL_CALLS"
        return Outcome("", status, call.input_tokens, tokens, version, tool_calls)
    prompt = tool_results_text(call.messages[-1]) or prompt
    text = compose_answer(call.ref.model, prompt)
    if call.json_format is not None:
        text = json_answer(call.ref.model, prompt, call.json_format.get("schema"))
    limit = call.max_tokens
    if kind == "truncate":
        half = max(1, count_tokens(text) // 2)
        limit = half if limit is None else min(limit, half)
    if limit is not None and count_tokens(text) > limit:
        return _outcome(
            call, truncate_tokens(text, limit), "ALTERNATIVE_STATUS_TRUNCATED_FINAL", version
        )
    return _outcome(call, text, "ALTERNATIVE_STATUS_FINAL", version)


def plan_tool_calls(call: CompletionCall, prompt: str) -> list[dict] | None:
    """Call a tool only in answer to a user's text (not to a tool result)."""
    last = call.messages[-1]
    choice = call.tool_choice or {}
    if (
        not call.tools
        or last["role"] != "user"
        or "text" not in last
        or choice.get("mode") == "NONE"
    ):
        return None
    required = choice.get("mode") == "REQUIRED"
    tool = pick_tool(call.tools, prompt, choice.get("functionName"), required)
    if tool is None:
        return None
    # Yandex returns integers as floats (5.0), as recorded from the real service.
    return [{"name": tool["name"], "arguments": sample_arguments(tool, prompt, integer=1.0)}]


def _outcome(call: CompletionCall, text: str, status: str, version: str) -> Outcome:
    return Outcome(text, status, call.input_tokens, count_tokens(text), version)


def context_error(limit: int, got: int, folder: str) -> EmulatorError:
    prefix = f"Error in session internal_id=emulator&request_id=emulator&folder_id={folder}: "
    return EmulatorError(
        400, f"{prefix}Number of input tokens must be no more than {limit}, got {got}"
    )


def result_json(outcome: Outcome, text: str | None = None, status: str | None = None) -> dict:
    """The CompletionResponse; int64 fields as strings. ``text``/``status`` override for chunks."""
    text = outcome.text if text is None else text
    completion = count_tokens(text) if outcome.tool_calls is None else outcome.completion_tokens
    message: dict = {"role": "assistant", "text": text}
    if outcome.tool_calls is not None and status is None:
        calls = [{"functionCall": call} for call in outcome.tool_calls]
        message = {"role": "assistant", "toolCallList": {"toolCalls": calls}}
    return {
        "alternatives": [{"message": message, "status": status or outcome.status}],
        "usage": {
            "inputTextTokens": str(outcome.input_tokens),
            "completionTokens": str(completion),
            "totalTokens": str(outcome.input_tokens + completion),
            "completionTokensDetails": {"reasoningTokens": "0"},
        },
        "modelVersion": outcome.version,
    }


def stream_prefixes(text: str, tokens_per_chunk: int = 3) -> list[str]:
    """Cumulative texts of the PARTIAL chunks (each longer than the last), final excluded."""
    pieces = token_pieces(text)
    ends = range(tokens_per_chunk, len(pieces), tokens_per_chunk)
    return ["".join(pieces[:end]) for end in ends]


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
