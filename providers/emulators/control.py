"""The run-time control endpoint both emulators mount under ``/_emulator``.

- ``GET|POST|DELETE /_emulator/faults``: list, add (one rule or a list), clear fault rules
  (see ``faults.py`` for the rule format).
- ``GET /_emulator/versions``: the served version of every model and branch.
- ``POST /_emulator/versions``: ``{"model", "branch", "version"}`` sets one served version;
  ``{"model", "promote": true}`` promotes: deprecated := latest, latest := rc;
  ``{"model", "branch", "retired": true}`` takes a version out of service (Yandex 400, GigaChat
  404 ``No such model``, as for an unknown model) until a version is set again.
- ``GET /_emulator/requests`` (``?request_id=``): every provider call (control calls aside),
  oldest first, the newest 10,000 kept: the client's request id (the header the gateway
  sends, YandexGPT ``x-client-request-id``, GigaChat ``X-Request-ID``; null without one),
  method, path, status (0 when the connection was reset) and time. ``DELETE`` clears it.
- ``GET /_emulator/stats``: request counts per route and per model, in-flight gauges,
  concurrency rejections, tokens issued, faults fired.
- ``GET|POST /_emulator/latency``: ``{"latency": s, "latency_jitter": s, "stream_chunk_delay": s}``
  (any subset): a fixed delay before every generation answer (time to first byte), plus a
  uniform random 0..jitter, plus a pause between stream chunks (total stream time).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from aiohttp import web

from providers.emulators.common import Runtime
from providers.emulators.faults import FaultBook, FaultRule

BRANCHES = ("latest", "rc", "deprecated")


class VersionTable:
    """Served version string per (model, branch); models are matched case-insensitively."""

    def __init__(self, versions: dict[str, dict[str, str]]):
        self._names = {name.lower(): name for name in versions}
        self._versions: dict[str, dict[str, str | None]] = {
            name: dict(branches) for name, branches in versions.items()
        }
        self._lock = threading.Lock()

    def canonical(self, model: str) -> str | None:
        return self._names.get(model.lower())

    def get(self, model: str, branch: str) -> str | None:
        name = self.canonical(model)
        return None if name is None else self._versions[name].get(branch)

    def set(self, model: str, branch: str, version: str) -> None:
        name = self._require(model)
        if branch not in self._versions[name]:
            raise ValueError(f"model {name} has no branch {branch!r}")
        with self._lock:
            self._versions[name][branch] = version

    def retire(self, model: str, branch: str) -> None:
        """Take a version out of service: its requests fail as for an unknown model."""
        name = self._require(model)
        if branch not in self._versions[name]:
            raise ValueError(f"model {name} has no branch {branch!r}")
        with self._lock:
            self._versions[name][branch] = None

    def promote(self, model: str) -> None:
        name = self._require(model)
        with self._lock:
            branches = self._versions[name]
            if "deprecated" in branches:
                branches["deprecated"] = branches["latest"]
            branches["latest"] = branches.get("rc", branches["latest"])

    def as_json(self) -> dict[str, dict[str, str | None]]:
        with self._lock:
            return {name: dict(branches) for name, branches in self._versions.items()}

    def _require(self, model: str) -> str:
        name = self.canonical(model)
        if name is None:
            raise ValueError(f"unknown model {model!r}")
        return name


@dataclass
class Control:
    runtime: Runtime
    faults: FaultBook
    versions: VersionTable


CONTROL = web.AppKey("emulator_control", Control)
routes = web.RouteTableDef()


def add_control_routes(app: web.Application, control: Control) -> None:
    app[CONTROL] = control
    app.add_routes(routes)


@routes.get("/_emulator/faults")
async def list_faults(request: web.Request) -> web.Response:
    faults = request.app[CONTROL].faults
    return web.json_response({"faults": faults.as_json(), "fired": faults.fired})


@routes.post("/_emulator/faults")
async def add_faults(request: web.Request) -> web.Response:
    faults = request.app[CONTROL].faults
    try:
        rules = [FaultRule.from_json(item) for item in _as_list(await _json(request))]
    except (TypeError, ValueError) as error:
        return _bad_request(str(error))
    for rule in rules:
        faults.add(rule)
    return web.json_response({"faults": faults.as_json()}, status=201)


@routes.delete("/_emulator/faults")
async def clear_faults(request: web.Request) -> web.Response:
    request.app[CONTROL].faults.clear()
    return web.json_response({"faults": []})


@routes.get("/_emulator/requests")
async def list_requests(request: web.Request) -> web.Response:
    logged = request.app[CONTROL].runtime.logged(request.query.get("request_id"))
    return web.json_response({"requests": logged, "count": len(logged)})


@routes.delete("/_emulator/requests")
async def clear_requests(request: web.Request) -> web.Response:
    request.app[CONTROL].runtime.request_log.clear()
    return web.json_response({"requests": [], "count": 0})


@routes.get("/_emulator/versions")
async def list_versions(request: web.Request) -> web.Response:
    return web.json_response({"versions": request.app[CONTROL].versions.as_json()})


@routes.post("/_emulator/versions")
async def change_version(request: web.Request) -> web.Response:
    versions = request.app[CONTROL].versions
    try:
        _apply_version_change(versions, await _json(request))
    except (KeyError, TypeError, ValueError) as error:
        return _bad_request(f"bad version change: {error}")
    return web.json_response({"versions": versions.as_json()})


@routes.get("/_emulator/stats")
async def stats(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    return web.json_response({**control.runtime.stats(), "faults_fired": control.faults.fired})


@routes.get("/_emulator/latency")
async def get_latency(request: web.Request) -> web.Response:
    return web.json_response(_latency_json(request.app[CONTROL].runtime))


@routes.post("/_emulator/latency")
async def set_latency(request: web.Request) -> web.Response:
    runtime = request.app[CONTROL].runtime
    try:
        _apply_latency(runtime, await _json(request))
    except (TypeError, ValueError) as error:
        return _bad_request(f"bad latency: {error}")
    return web.json_response(_latency_json(runtime))


def _apply_version_change(versions: VersionTable, data: object) -> None:
    if not isinstance(data, dict):
        raise TypeError("expected a JSON object")
    if data.get("promote"):
        versions.promote(data["model"])
        return
    if data.get("retired"):
        versions.retire(data["model"], data.get("branch", "latest"))
        return
    version = data["version"]
    if not isinstance(version, str) or not version:
        raise ValueError("version must be a non-empty string")
    versions.set(data["model"], data.get("branch", "latest"), version)


LATENCY_FIELDS = ("latency", "latency_jitter", "stream_chunk_delay")


def _apply_latency(runtime: Runtime, data: object) -> None:
    if not isinstance(data, dict) or set(data) - set(LATENCY_FIELDS):
        raise ValueError(f"expected a JSON object with some of {LATENCY_FIELDS}")
    values = {name: float(data.get(name, getattr(runtime, name))) for name in LATENCY_FIELDS}
    if any(value < 0 for value in values.values()):
        raise ValueError("delays must be >= 0")
    for name, value in values.items():
        setattr(runtime, name, value)


def _latency_json(runtime: Runtime) -> dict:
    return {name: getattr(runtime, name) for name in LATENCY_FIELDS}


def _as_list(data: object) -> list:
    return data if isinstance(data, list) else [data]


async def _json(request: web.Request) -> object:
    try:
        return await request.json()
    except ValueError:
        return None


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
