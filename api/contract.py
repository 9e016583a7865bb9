"""The HTTP contract of each endpoint, declared once on its view; `api/openapi.py` builds the
OpenAPI document from these declarations and the app's URL map.

`@endpoint(bp, "POST", "/path", ...)` registers the view on a plain Flask blueprint and
records its `Contract`: request body, query and header models, response model, status and
headers, the possible error statuses, the tag and the operationId. The same declaration
drives the request handling, so the document cannot say one thing and the view do another:

- authentication runs first (`auth="key"` or `"admin"`), before the body is read;
- the body is read by the one JSON reader, `read_json` (415 unless `application/json`,
  413 `request_too_large` past `LLMGW_MAX_BODY_BYTES`, 400 `invalid_json` for bad JSON or
  JSON nested deeper than `MAX_JSON_DEPTH`), validated and passed as `body=`;
- no string of the input — body (keys and values), query or path — may hold a NUL
  (`\u0000`): PostgreSQL cannot store one, so it is a 400 here, not a 500 at the commit;
- the query string is validated by the query model and passed as `query=` (a bad value is
  400 `invalid_request` with `problems`, the shape of a body validation error);
- a view may return a pydantic model or a dict; either goes out through the declared
  response model, so timestamps carry their UTC offset (`api.schemas.UtcDatetime`).

Chosen over flask-openapi3, SpecTree and APIFlask: flask-openapi3 and APIFlask replace the
`Flask` app and `Blueprint` classes and inject arguments their own way (every view and the app
factory would change, under the feet of the concurrent work on dependencies); SpecTree keeps
plain Flask but answers validation errors in its own body shape and loads its UI from a CDN.
Each would bring a second error format to keep in line with `api/errors.py`. The decorator is
about 200 lines and the docs page comes from a pinned package of Swagger UI's files
(`swagger-ui-bundle-v2`), served by `api/docs.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_origin

from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from api.auth import authenticate, require_admin
from api.errors import ApiError, validation_problems

Auth = Literal["none", "key", "admin"]


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})

    def parameter(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "header",
            "required": self.required,
            "description": self.description,
            "schema": self.schema,
        }

    def optional(self) -> Header:
        return Header(self.name, self.description, False, self.schema)


@dataclass(frozen=True)
class Contract:
    method: str
    summary: str
    tag: str
    operation_id: str
    response: type[BaseModel] | None = None
    status: int = 200
    media_type: str = "application/json"
    also: dict[str, str] = field(default_factory=dict)  # other media types → description
    body: type[BaseModel] | None = None
    # Other request media types (→ description) the view parses itself: for these `body=`
    # is the raw text (size-checked, UTF-8, no NUL) instead of the validated JSON model.
    body_also: dict[str, str] = field(default_factory=dict)
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    response_headers: tuple[Header, ...] = ()
    errors: tuple[int, ...] = ()
    auth: Auth = "key"
    description: str = ""

    def error_statuses(self) -> list[int]:
        implied = {"none": set(), "key": {401}, "admin": {401, 403}}[self.auth]
        implied = implied | {400}  # any path or query string may hold a NUL (`reject_nul`)
        if self.body is not None:
            implied |= {400, 413, 415}
        if self.query is not None or self.headers:
            implied.add(400)
        return sorted(implied | set(self.errors))


def endpoint(bp: Blueprint, method: str, rule: str, **declared: Any) -> Callable[..., Any]:
    """Register the view on `bp` and attach its `Contract` (see the module docstring)."""
    contract = Contract(method=method.lower(), **declared)

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handle(**path_args: Any) -> Any:
            reject_nul(path_args, "path")
            return render(contract, view(**path_args, **inputs(contract)))

        handle.contract = contract  # type: ignore[attr-defined]
        bp.add_url_rule(rule, view_func=handle, methods=[method.upper()])
        return handle

    return register


def inputs(contract: Contract) -> dict[str, Any]:
    if contract.auth == "admin":
        require_admin()
    elif contract.auth == "key":
        authenticate()
    found: dict[str, Any] = {}
    reject_nul(request.args.to_dict(flat=False), "query")
    if contract.query is not None:
        found["query"] = read_query(contract.query)
    if contract.body is not None and request.mimetype in contract.body_also:
        found["body"] = read_text()
    elif contract.body is not None:
        found["body"] = contract.body.model_validate(read_json())
    return found


def read_text() -> str:
    """A body of one of the contract's `body_also` types: 413 past the limit, 400 unless it
    is UTF-8 without NUL characters."""
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise too_large() from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_request", "The request body is not UTF-8 text.") from exc
    reject_nul(text, "body")
    return text


MAX_JSON_DEPTH = 32
"""Arrays and objects inside one another; no body of ours needs more than a handful."""


def read_json() -> Any:
    """The one JSON body reader: 415 unless the body is JSON, 413 if it is larger than the
    app's `MAX_CONTENT_LENGTH`, 400 if it does not parse, nests too deeply or holds a NUL."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
        )
    try:
        value = request.get_json()
    except RequestEntityTooLarge as exc:
        raise too_large() from exc
    except RecursionError as exc:
        raise too_deep() from exc
    except BadRequest as exc:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from exc
    if json_depth(value) > MAX_JSON_DEPTH:
        raise too_deep()
    reject_nul(value, "body")
    return value


def too_large() -> ApiError:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return ApiError(
        413, "request_too_large", f"The request body is larger than {limit} bytes.", limit=limit
    )


def too_deep() -> ApiError:
    return ApiError(
        400, "invalid_json", f"The request body is nested deeper than {MAX_JSON_DEPTH} levels."
    )


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def reject_nul(value: Any, where: str) -> None:
    """400 if any string in `value` (dict keys included) holds a NUL character."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise nul_error(where, path)
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise nul_error(where, path)
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item))


def nul_error(where: str, path: str) -> ApiError:
    field = path or where
    return ApiError(
        400,
        "invalid_request",
        f"The {where} holds a NUL character (\\u0000) in {field}; strings must not contain one.",
        problems=[{"field": field, "problem": "contains a NUL character (\\u0000)"}],
    )


def read_query(model: type[BaseModel]) -> Any:
    """The query string validated by `model`; list fields take every value of their name."""
    raw: dict[str, Any] = {}
    for name in request.args:
        info = model.model_fields.get(name)
        many = info is not None and get_origin(info.annotation) is list
        raw[name] = request.args.getlist(name) if many else request.args[name]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise query_error(validation_problems(exc)) from exc


def query_error(problems: list[dict[str, str]]) -> ApiError:
    summary = "; ".join(f"{p['field'] or 'query'}: {p['problem']}" for p in problems)
    return ApiError(
        400, "invalid_request", f"The query string is invalid: {summary}", problems=problems
    )


def render(contract: Contract, returned: Any) -> Any:
    """The view's return value with its body passed through the declared response model."""
    if isinstance(returned, Response):
        return returned
    body, rest = (returned[0], returned[1:]) if isinstance(returned, tuple) else (returned, ())
    if contract.response is not None and isinstance(body, dict):
        try:
            body = contract.response.model_validate(body)
        except ValidationError as exc:  # our bug, not the client's: a 500, never a 400
            raise ResponseMismatch(f"{request.path}: {exc}") from None
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    if not rest:
        rest = (contract.status,)
    return (body, *rest)


class ResponseMismatch(Exception):
    """A view's answer does not fit its declared response model."""


def contract_of(view: Callable[..., Any]) -> Contract | None:
    return getattr(view, "contract", None)


# -- headers more than one endpoint declares ------------------------------------------------

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Same key + same body returns the same job (for 24 h); a different body is a 409.",
    schema={"type": "string", "minLength": 1, "maxLength": 255},
)
IDEMPOTENT_REPLAYED = Header(
    "Idempotent-Replayed", "`true` when the answer is the job of an earlier request with this key"
)
DEPRECATION_HEADERS = (
    Header("Deprecation", "The served version is deprecated (RFC 9745): `@<epoch>` or `true`"),
    Header("Sunset", "When the served version stops being served (RFC 8594, an HTTP date)"),
)
RATE_LIMIT_HEADERS = tuple(
    Header(f"x-ratelimit-{what}", f"OpenAI-style rate-limit header ({meaning}); may be absent")
    for what, meaning in (
        ("limit-requests", "requests allowed in the window"),
        ("remaining-requests", "requests left in the window"),
        ("reset-requests", "time until the request window resets, e.g. `1s`"),
        ("limit-tokens", "tokens allowed in the window"),
        ("remaining-tokens", "tokens left in the window"),
        ("reset-tokens", "time until the token window resets"),
    )
)
