"""Request metrics at the one chokepoint every request passes."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from api.context import services
from monitoring.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger(__name__)


def register_request_metrics(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        HTTP_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            HTTP_LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        """Every response to a key with key-wide per-minute limits carries their figures."""
        principal = g.get("principal")
        if principal is None or not principal.limits:
            return response
        try:
            headers = services().admission.headers(principal.id, principal.limits)
        except Exception:  # a header is not worth failing an answer for
            log.warning("could not read the rate-limit figures", exc_info=True)
            return response
        response.headers.update(headers)
        return response
