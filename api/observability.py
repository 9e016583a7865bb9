"""Request metrics at the one chokepoint every request passes."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from monitoring.metrics import HTTP_LATENCY, HTTP_REQUESTS


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
