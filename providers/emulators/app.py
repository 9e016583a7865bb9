"""What the YandexGPT and GigaChat emulator apps share: the state's control block and the
app factory's wiring (path faults, the error middleware, the ``/_emulator`` routes).

Decisions:
- A small base class for the state rather than a shared state object: each emulator keeps
  its own credentials, tokens and operations, and only the control block (runtime counters
  and latency, fault book, version table) is built the same way.
- ``build_app`` takes the wire-format pieces (error messages, error renderer, request-id
  headers) as arguments, so neither emulator's wire module is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from aiohttp import web

from providers.emulators.common import MAX_BODY_BYTES, ErrorRenderer, Runtime, make_middleware
from providers.emulators.control import Control, VersionTable, add_control_routes
from providers.emulators.faults import FaultBook, path_fault_hook


class TimingConfig(Protocol):
    """The part of an emulator config that seeds its runtime."""

    latency: float
    latency_jitter: float
    stream_chunk_delay: float
    fault_seed: int | None  # seeds the draws of fault rules with a probability and no seed


class EmulatorState:
    """The control block every emulator state has; subclasses add their own stores."""

    def __init__(self, timing: TimingConfig, versions: dict[str, dict[str, str]]) -> None:
        runtime = Runtime(timing.latency, timing.latency_jitter, timing.stream_chunk_delay)
        self.control = Control(runtime, FaultBook(timing.fault_seed), VersionTable(versions))

    @property
    def runtime(self) -> Runtime:
        return self.control.runtime


S = TypeVar("S", bound=EmulatorState)


def build_app(
    key: web.AppKey[S],
    state: S,
    routes: Iterable[web.RouteTableDef],
    *,
    messages: dict[int, str],
    render_error: ErrorRenderer,
    headers: tuple[str, str],
    client_id_header: str,
) -> web.Application:
    """An emulator app: ``state`` under ``key``, its routes, then the control routes;
    ``client_id_header`` is the header the client's request id comes in (the request log)."""
    hook = path_fault_hook(state.control.faults, messages)
    middleware = make_middleware(state.runtime, render_error, headers, hook, client_id_header)
    app = web.Application(middlewares=[middleware], client_max_size=MAX_BODY_BYTES)
    app[key] = state
    for table in routes:
        app.add_routes(table)
    add_control_routes(app, state.control)
    return app
