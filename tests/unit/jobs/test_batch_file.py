"""The batch file parser: every bad line is named with its number and why."""

from __future__ import annotations

import json

from jobs.batch_file import parse_jsonl, parse_requests


def line(custom_id: str = "a", **over) -> dict:
    body = {"model": "yandexgpt", "messages": [{"role": "user", "content": "hi"}]}
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    } | over


def test_good_lines_become_batch_priority_requests_and_blank_lines_are_ignored():
    text = "\n".join([json.dumps(line("a")), "", json.dumps(line("b")), ""])
    parsed = parse_jsonl(text)
    assert parsed.problems == []
    assert [(p.line, p.custom_id) for p in parsed.lines] == [(1, "a"), (3, "b")]
    assert parsed.lines[0].request["priority"] == "batch"


def test_each_bad_line_is_reported_with_its_number_and_reason():
    bad_body = line("c", body={"model": "yandexgpt", "messages": [], "n": 2})
    text = "\n".join(
        [
            json.dumps(line("a")),
            "{not json",
            json.dumps(line("b", url="/v1/embeddings")),
            json.dumps(bad_body),
            json.dumps(line("a")),
            "[1, 2]",
        ]
    )
    parsed = parse_jsonl(text)
    assert [p.custom_id for p in parsed.lines] == ["a"]
    problems = {p.line: p for p in parsed.problems}
    assert sorted(problems) == [2, 3, 4, 5, 6]
    assert "not valid JSON" in problems[2].problem
    assert "url" in problems[3].problem and problems[3].custom_id == "b"
    assert "messages" in problems[4].problem and "n:" in problems[4].problem
    assert "duplicate custom_id" in problems[5].problem
    assert problems[6].custom_id is None


def test_json_requests_are_numbered_from_one():
    parsed = parse_requests([line("a"), {"custom_id": "b"}])
    assert [p.line for p in parsed.lines] == [1]
    assert parsed.problems[0].line == 2 and "method" in parsed.problems[0].problem
