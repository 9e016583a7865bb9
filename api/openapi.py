"""The OpenAPI document, generated from the app's URL map and each view's declared `Contract`
(`api/contract.py`); nothing here lists endpoints by hand. A route without a contract is an
error at build time, so the document cannot leave one out."""

from __future__ import annotations

import re
from importlib.metadata import version as package_version
from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from api.contract import Contract, contract_of
from api.schemas import MODEL_ID_SCHEMA, ErrorBody
from routing.model_id import MODEL_PATTERN

MODEL_NAME_PATTERN = f"^{MODEL_PATTERN}$"

ERROR_DESCRIPTIONS = {
    400: "The request is invalid: body, query, header or model id (`problems` lists fields)",
    401: "No API key, or not a valid one",
    403: "The endpoint needs an admin API key",
    404: "Not found",
    409: "Conflicts with the current state",
    410: "The model version is past its sunset and the policy rejects",
    413: "The body is larger than the server's limit (`LLMGW_MAX_BODY_BYTES`)",
    415: "The body is not `application/json` (or another type the operation lists)",
    429: "Rate-limited: by a limit of llmgw, or by the provider on every candidate; "
    "`Retry-After` says how many seconds to wait when that is known",
    502: "The job failed upstream",
    503: "A dependency (queue, route, Redis, database) is unavailable",
    504: "The job did not finish in time",
}
PATH_DESCRIPTIONS = {
    "job_id": "The job's id",
    "model_id": "A model id, `<model>[:<channel>]`",
    "name": "A model's name or alias",
    "key_id": "An API key's id",
    "key": "A circuit's key, `<provider>:<model>:<channel>`",
}
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "model_id": MODEL_ID_SCHEMA,
    "name": {"pattern": MODEL_NAME_PATTERN},
}
# Static files of the docs page are files, not API operations.
UNDOCUMENTED_ENDPOINTS = frozenset({"static", "docs.static"})


def openapi_path(rule: Rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)


def build_openapi(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    models: set[type[BaseModel]] = {ErrorBody}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS:
            continue
        contract = contract_of(app.view_functions[rule.endpoint])
        if contract is None:
            raise LookupError(f"{rule.rule} ({rule.endpoint}) has no declared contract")
        paths.setdefault(openapi_path(rule), {})[contract.method] = operation(rule, contract)
        models |= {m for m in (contract.body, contract.response, contract.query) if m}
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmgw", "version": package_version("llmgw")},
        "tags": [
            {"name": t} for t in sorted({o["tags"][0] for p in paths.values() for o in p.values()})
        ],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": component_schemas(models),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def component_schemas(models: set[type[BaseModel]]) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    return schemas.get("$defs", {})


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation(rule: Rule, contract: Contract) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": contract.operation_id,
        "summary": contract.summary,
        "tags": [contract.tag],
        "parameters": parameters(rule, contract),
        "responses": {str(contract.status): success(contract)}
        | {str(code): error(code) for code in contract.error_statuses()},
    }
    if contract.description:
        op["description"] = contract.description
    if contract.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(contract.body)}}
            | {
                media: {"schema": {"type": "string", "description": d}}
                for media, d in contract.body_also.items()
            },
        }
    op["security"] = [] if contract.auth == "none" else [{"bearer": []}]
    return op


def parameters(rule: Rule, contract: Contract) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_DESCRIPTIONS.get(name, name),
            "schema": {"type": "string", **PATH_SCHEMAS.get(name, {})},
        }
        for name in sorted(rule.arguments)
    ]
    found += [h.parameter() for h in contract.headers]
    if contract.query is not None:
        found += query_parameters(contract.query)
    return found


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.get("description", ""),
            "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
        }
        for name, prop in schema["properties"].items()
    ]


def success(contract: Contract) -> dict[str, Any]:
    if contract.response is not None:
        schema: dict[str, Any] = ref(contract.response)
    else:
        schema = {"type": "string"}
    content = {contract.media_type: {"schema": schema}}
    content |= {
        media: {"schema": {"type": "string", "description": d}}
        for media, d in contract.also.items()
    }
    body: dict[str, Any] = {"description": contract.summary, "content": content}
    if contract.response_headers:
        body["headers"] = {
            h.name: {"description": h.description, "required": h.required, "schema": h.schema}
            for h in contract.response_headers
        }
    return body


def error(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS.get(code, "Error"),
        "content": {"application/json": {"schema": ref(ErrorBody)}},
    }
