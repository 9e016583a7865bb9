"""docs/api.md is the reference of errors and headers: every error code the code can emit and
every header the OpenAPI document declares is on the page, and the example bodies marked ▶
are what the running code answers (run here against the unit app)."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

import api
import jobs.admission
import jobs.errors
import providers.errors
from api.errors import HTTP_CODES, ROUTING_ERRORS
from storage.limits import REASONS

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "api.md").read_text("utf-8")
RAISED = re.compile(r"(?:ApiError|error_response)\(\s*\d+,\s*\"([a-z_]+)\"", re.S)
# werkzeug's own errors the app can answer (unknown path, wrong method), named by api.errors.
WERKZEUG = {"method_not_allowed"}
# Job error codes written by the gateway itself rather than a provider adapter.
JOB_CODES = {"no_route_available", "dispatch_failed"}


def codes_in_api_sources() -> set[str]:
    folder = Path(api.__file__).parent
    return {code for path in folder.glob("*.py") for code in RAISED.findall(path.read_text())}


def subclass_attributes(base: type, attribute: str) -> set[str]:
    found, todo = set(), [base]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        value = cls.__dict__.get(attribute)
        if isinstance(value, str):
            found.add(value)
    return found


def emitted_codes() -> set[str]:
    routing = {code for _, code in ROUTING_ERRORS.values()} | {"invalid_model"}
    job = subclass_attributes(jobs.errors.JobError, "code") | set(REASONS.values())
    provider = subclass_attributes(providers.errors.ProviderError, "reason")
    assert inspect.getsource(jobs.admission.LimitExceeded).count("refused.reason")
    return (
        codes_in_api_sources()
        | routing
        | job
        | provider
        | set(HTTP_CODES.values())
        | (WERKZEUG | JOB_CODES)
    )


def test_the_collection_finds_codes_from_every_source():
    codes = emitted_codes()
    for sample in (
        "missing_api_key",
        "model_sunset",
        "job_not_found",
        "upstream_5xx",
        "quota_exceeded",
        "request_too_large",
        "unavailable",
        "not_ready",
    ):
        assert sample in codes


@pytest.mark.parametrize("code", sorted(emitted_codes()))
def test_every_error_code_is_documented(code):
    assert f"`{code}`" in DOC, f"docs/api.md does not list the error code {code}"


def documented_headers() -> set[str]:
    return {h.lower() for h in re.findall(r"`([A-Za-z][\w-]+)(?::[^`]*)?`", DOC)}


def test_every_header_the_openapi_document_declares_is_documented(unit_client):
    document = unit_client.get("/openapi.json").get_json()
    declared = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header":
                    declared.add(parameter["name"])
            for response in operation.get("responses", {}).values():
                declared |= set(response.get("headers", {}))
    assert declared, "the document declares no header"
    missing = sorted(h for h in declared if h.lower() not in documented_headers())
    assert missing == []


def examples() -> dict[str, dict]:
    """code -> the ▶ example body of its row."""
    rows = re.findall(r"^\| \d{3} \| `([a-z_]+)` \|.*\| ▶ `(\{.*\})` \|$", DOC, re.M)
    return {code: json.loads(body) for code, body in rows}


MESSAGE = [{"role": "user", "content": "hi"}]
REQUESTS = {
    "invalid_json": ("POST", "/v1/jobs", {"data": "{", "content_type": "application/json"}),
    "invalid_request": ("POST", "/v1/jobs", {"json": {"model": "GigaChat", "messages": []}}),
    "invalid_model_id": (
        "POST",
        "/v1/jobs",
        {"json": {"model": "yandexgpt:", "messages": MESSAGE}},
    ),
    "invalid_idempotency_key": (
        "POST",
        "/v1/jobs",
        {
            "json": {"model": "GigaChat", "messages": MESSAGE},
            "headers": {"Idempotency-Key": "x" * 300},
        },
    ),
    "missing_api_key": ("GET", "/v1/jobs/x", {"auth": None}),
    "invalid_api_key": ("GET", "/v1/jobs/x", {"auth": "Bearer nope"}),
    "model_not_found": ("POST", "/v1/jobs", {"json": {"model": "gpt-4", "messages": MESSAGE}}),
    "channel_not_found": (
        "POST",
        "/v1/jobs",
        {"json": {"model": "GigaChat:deprecated", "messages": MESSAGE}},
    ),
    "version_not_found": (
        "POST",
        "/v1/jobs",
        {"json": {"model": "GigaChat:9.9.9", "messages": MESSAGE}},
    ),
    "job_not_found": ("GET", "/v1/jobs/nope", {}),
    "batch_not_found": ("GET", "/v1/batches/nope", {}),
    "key_not_found": ("GET", "/v1/admin/keys/nokey", {}),
    "unknown_route": ("GET", "/v1/nothing", {}),
    "unsupported_model": (
        "POST",
        "/v1/embeddings",
        {"json": {"model": "yandexgpt-lite", "input": "hi"}},
    ),
    "method_not_allowed": ("PUT", "/v1/jobs", {}),
    "unsupported_media_type": ("POST", "/v1/jobs", {"data": "x", "content_type": "text/plain"}),
}


def test_every_marked_example_has_a_request_here():
    assert sorted(examples()) == sorted(REQUESTS)


@pytest.mark.parametrize("code", sorted(REQUESTS))
def test_the_marked_example_is_what_the_api_answers(unit_client, master_auth, code):
    method, path, options = REQUESTS[code]
    options = dict(options)
    headers = {**master_auth, **options.pop("headers", {})}
    if "auth" in options:
        auth = options.pop("auth")
        headers.pop("Authorization")
        if auth:
            headers["Authorization"] = auth
    response = unit_client.open(path, method=method, headers=headers, **options)
    status = int(re.search(rf"^\| (\d{{3}}) \| `{code}` \|", DOC, re.M).group(1))
    assert response.status_code == status
    assert response.get_json() == examples()[code]


def test_the_openapi_error_examples_are_the_bodies_on_this_page():
    from api.examples import error_examples

    documented = {
        code: {"status": int(status), "body": json.loads(body)}
        for status, code, body in re.findall(
            r"^\| (\d{3}) \| `([a-z_]+)` \|.*\| (?:▶ )?(?:`|`` )(\{.*\})(?:`| ``) \|$", DOC, re.M
        )
    }
    assert documented == error_examples()


def test_every_error_example_is_in_the_openapi_document(unit_client):
    from api.examples import error_examples

    document = unit_client.get("/openapi.json").get_json()
    shown: dict[str, set[int]] = {}
    declared: set[int] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                declared.add(int(status))
                media = response.get("content", {}).get("application/json", {})
                for name, example in media.get("examples", {}).items():
                    assert example["value"]["error"]["code"] == name
                    shown.setdefault(name, set()).add(int(status))
    for code, example in error_examples().items():
        if example["status"] in declared:  # 405 and 500 belong to no one operation
            assert example["status"] in shown.get(code, set()), f"{code} is in no response"
    assert len(shown) >= len(error_examples()) - 3


def test_the_request_examples_are_valid_and_plan_as_they_say(unit_client, master_auth):
    from urllib.parse import urlencode

    from api.examples import REQUEST_EXAMPLES
    from jobs.spec import JobRequest

    document = unit_client.get("/openapi.json").get_json()
    create = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert set(create["examples"]) == {"versioned", "pinned", "fallback"}
    examples = list(REQUEST_EXAMPLES["createJob"].items())
    for name, example in examples:
        body = example["value"]
        request = JobRequest.model_validate(
            {k: body[k] for k in ("model", "messages")}
            | {k: body[k] for k in ("fallback", "cross_provider") if k in body}
        )
        query = urlencode(
            {"cross_provider": str(request.cross_provider).lower(), "fallback": request.fallback},
            doseq=True,
        )
        response = unit_client.get(
            f"/v1/models/{request.model}/resolve?{query}", headers=master_auth
        )
        assert response.status_code == 200, (name, response.get_json())
        plan = response.get_json()
        reasons = [c["reason"] for c in plan["candidates"]]
        if name == "fallback":
            assert {"version_fallback", "explicit", "cross_provider"} <= set(reasons), reasons
        if name == "pinned":
            assert plan["route"]["model"] == "yandexgpt" and reasons == ["requested"]


def test_the_job_response_examples_fit_the_schema_and_the_running_catalogue(
    unit_client, unit_runtime
):
    from api.examples import HEADER_EXAMPLES, RESPONSE_EXAMPLES
    from api.schemas import JobOut

    document = unit_client.get("/openapi.json").get_json()
    get_job = document["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["200"]
    examples = get_job["content"]["application/json"]["examples"]
    assert examples == RESPONSE_EXAMPLES["getJob"]
    jobs = {name: JobOut.model_validate(e["value"]) for name, e in examples.items()}
    fallback = jobs["fallback"]
    assert [a.outcome for a in fallback.attempts] == ["failed", "failed", "succeeded"]
    assert fallback.fallbacks[0]["to"] == f"{fallback.route.model}:{fallback.route.channel}"
    # The deprecated example is what the gateway says of the built-in catalogue's version.
    route = unit_runtime.resolver.resolve(jobs["deprecated"].model)
    assert jobs["deprecated"].warnings == route.warnings()
    assert route.deprecation_headers() == HEADER_EXAMPLES
    assert {name: get_job["headers"][name]["example"] for name in HEADER_EXAMPLES} == (
        HEADER_EXAMPLES
    )
