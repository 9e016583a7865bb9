"""The OpenAPI document is generated from the declared contracts: it covers exactly the routes
the app serves, it is a valid OpenAPI 3.1 document, and every operation is fully declared."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from api.openapi import UNDOCUMENTED_ENDPOINTS, build_openapi, openapi_path

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture()
def document(unit_client):
    return unit_client.get("/openapi.json").get_json()


def operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method, path, op


def flask_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS:
            continue
        routes |= {(m.lower(), openapi_path(rule)) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_document_is_valid_openapi(document):
    validate(document)


def test_every_url_rule_is_documented_and_nothing_else(unit_client, document):
    documented = {(m, p) for m, p, _ in operations(document)}
    assert documented == flask_routes(unit_client.application)


def test_the_static_files_of_the_docs_page_are_the_only_undocumented_rules(unit_client):
    rules = {r.endpoint: r.rule for r in unit_client.application.url_map.iter_rules()}
    assert {e for e in rules if e in UNDOCUMENTED_ENDPOINTS} == {"static", "docs.static"}
    assert rules["docs.static"].startswith("/docs/")


def test_every_operation_is_fully_declared(document):
    ids = []
    for method, path, op in operations(document):
        where = f"{method.upper()} {path}"
        ids.append(op["operationId"])
        assert op["tags"] and op["summary"], where
        ok = [code for code in op["responses"] if code.startswith("2")]
        assert len(ok) == 1, where
        assert all(c["schema"] for c in op["responses"][ok[0]]["content"].values()), where
        errors = {c: r for c, r in op["responses"].items() if c[0] in "45"}
        assert all(
            r["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            for r in errors.values()
        ), where
        if op["security"]:
            assert "401" in errors, where
        if "requestBody" in op:
            assert {"400", "415"} <= set(errors), where
    assert len(ids) == len(set(ids))


def test_every_json_answer_has_a_model(document):
    for method, path, op in operations(document):
        for code, response in op["responses"].items():
            if "application/json" in response.get("content", {}):
                schema = response["content"]["application/json"]["schema"]
                assert "$ref" in schema, f"{method} {path} {code}"


def test_job_endpoints_declare_their_headers(document):
    create = document["paths"]["/v1/jobs"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    headers = create["responses"]["202"]["headers"]
    assert headers["Location"]["required"] is True
    assert {"Idempotent-Replayed", "Deprecation", "Sunset", "x-ratelimit-limit-requests"} <= set(
        headers
    )
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]
    assert {"x-llmgw-job-id", "x-llmgw-model-version", "Sunset"} <= set(chat["headers"])
    assert set(chat["content"]) == {"application/json", "text/event-stream"}


def test_query_parameters_come_from_their_models(document):
    wait = document["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in wait} == {("job_id", "path"), ("wait", "query")}
    resolve = document["paths"]["/v1/models/{model_id}/resolve"]["get"]["parameters"]
    assert {p["name"] for p in resolve} == {
        "model_id",
        "cross_provider",
        "fallback",
        "estimated_tokens",
        "features",
    }


def test_every_reference_resolves(unit_client):
    document = build_openapi(unit_client.application)
    names = set(re.findall(r"#/components/schemas/(\w+)", repr(document)))
    assert names and names <= set(document["components"]["schemas"])


def test_job_create_schema_comes_from_the_model(unit_client):
    schema = build_openapi(unit_client.application)["components"]["schemas"]["JobRequest"]
    assert set(schema["required"]) == {"model", "messages"}
    assert schema["properties"]["priority"]["enum"] == ["interactive", "batch"]


def test_docs_page_is_served_from_the_package(unit_client):
    page = unit_client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.get_data(as_text=True))
    assert assets and "http" not in page.get_data(as_text=True).replace("https://spec", "")
    for asset in assets:
        response = unit_client.get(asset)
        response.close()  # a static file is streamed from disk: close it
        assert response.status_code == 200, asset
