"""Reading a batch's requests: OpenAI's batch input lines, checked one by one.

Each line is `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`
and its body is a chat completion request as `JobRequest` takes it (strict, unknown fields
refused), run at priority `batch`. Every bad line is reported with its number and why, not
just the first, so a client fixes its file in one round; `on_invalid: skip` keeps the good
lines instead. Custom ids must be unique within the batch (the output is keyed by them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.spec import JobRequest

MAX_LINES = 100_000  # the scale target (OpenAI allows 50,000)
CHAT_URL = "/v1/chat/completions"


class BatchLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1, max_length=64)
    method: Literal["POST"]
    url: Literal["/v1/chat/completions"]
    body: dict[str, Any]


@dataclass(frozen=True)
class ParsedLine:
    line: int
    custom_id: str
    request: dict[str, Any]  # a `JobRequest` as JSON, priority batch


@dataclass(frozen=True)
class LineProblem:
    line: int
    problem: str
    custom_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "custom_id": self.custom_id, "problem": self.problem}


@dataclass(frozen=True)
class ParsedFile:
    lines: list[ParsedLine]
    problems: list[LineProblem]


def parse_jsonl(text: str) -> ParsedFile:
    """The lines of a JSONL file (blank lines are ignored; numbers count from 1)."""
    items: list[tuple[int, Any]] = []
    problems: list[LineProblem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            items.append((number, json.loads(raw)))
        except json.JSONDecodeError as exc:
            problems.append(LineProblem(number, f"not valid JSON ({exc.msg})"))
    parsed = parse_items(items)
    return ParsedFile(parsed.lines, sorted([*problems, *parsed.problems], key=lambda p: p.line))


def parse_requests(requests: list[Any]) -> ParsedFile:
    """The `requests` array of a JSON body; a request's number is its position from 1."""
    return parse_items(list(enumerate(requests, start=1)))


def parse_items(items: list[tuple[int, Any]]) -> ParsedFile:
    lines: list[ParsedLine] = []
    problems: list[LineProblem] = []
    seen: set[str] = set()
    for number, item in items:
        outcome = parse_line(number, item, seen)
        if isinstance(outcome, LineProblem):
            problems.append(outcome)
        else:
            seen.add(outcome.custom_id)
            lines.append(outcome)
    if len(lines) + len(problems) > MAX_LINES:
        problems.append(LineProblem(MAX_LINES + 1, f"a batch holds at most {MAX_LINES} lines"))
    return ParsedFile(lines, problems)


def parse_line(number: int, item: Any, seen: set[str]) -> ParsedLine | LineProblem:
    custom_id = item.get("custom_id") if isinstance(item, dict) else None
    custom_id = custom_id if isinstance(custom_id, str) else None
    try:
        line = BatchLineIn.model_validate(item)
        request = JobRequest.model_validate({**line.body, "priority": "batch"})
    except ValidationError as exc:
        return LineProblem(number, describe(exc), custom_id)
    if line.custom_id in seen:
        return LineProblem(number, f"duplicate custom_id {line.custom_id!r}", custom_id)
    if request.callback_url is not None:  # one callback for the whole batch, when it ends
        return LineProblem(
            number, "body.callback_url: set it on the batch, not on a line", custom_id
        )
    return ParsedLine(number, line.custom_id, request.model_dump(mode="json"))


def describe(exc: ValidationError) -> str:
    """`field: problem; ...` for the first few errors of a line."""
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or 'line'}: {err['msg']}"
        for err in exc.errors()[:5]
    ]
    return "; ".join(parts)
