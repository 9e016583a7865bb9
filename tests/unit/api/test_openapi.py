"""The OpenAPI document covers exactly the routes the app serves, and its schemas resolve."""

from __future__ import annotations

import re

from api.openapi import build_openapi


def flask_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_document_matches_the_url_map(unit_client):
    document = unit_client.get("/openapi.json").get_json()
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert documented == flask_routes(unit_client.application)


def test_every_reference_resolves():
    document = build_openapi()
    text = repr(document)
    names = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert names and names <= set(document["components"]["schemas"])


def test_job_create_schema_comes_from_the_model():
    schema = build_openapi()["components"]["schemas"]["JobRequest"]
    assert set(schema["required"]) == {"model", "messages"}
    assert schema["properties"]["priority"]["enum"] == ["interactive", "batch"]
