"""An example Alertmanager webhook receiver: one log line per alert it is told about.

Alertmanager POSTs a JSON document (version 4: `status`, `groupLabels`, `alerts` with
`labels`, `annotations`, `startsAt`, ...) to the URL of a `webhook_configs` receiver. This
prints each alert as one line (status, name, severity, version, summary, runbook) to stdout,
which is where `docker compose logs alertmanager-webhook` shows it. Replace it with the
receiver your team reads; it is here so the chain Prometheus → Alertmanager → receiver can
be seen working on one machine.

Standard library only: compose runs it in the plain `python:3.11-slim` image with this file
mounted (`python /receiver/webhook_receiver.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1024 * 1024  # Alertmanager batches alerts; a notification stays far below this


def alert_lines(notification: dict[str, Any]) -> list[str]:
    """One human line per alert of an Alertmanager webhook notification."""
    lines = []
    for alert in notification.get("alerts", []):
        labels, annotations = alert.get("labels", {}), alert.get("annotations", {})
        version = ":".join(labels[k] for k in ("provider", "model", "channel") if k in labels)
        lines.append(
            " | ".join(
                part
                for part in (
                    alert.get("status", notification.get("status", "?")).upper(),
                    labels.get("alertname", "?"),
                    labels.get("severity", "?"),
                    version,
                    annotations.get("summary", ""),
                    annotations.get("runbook_url", ""),
                )
                if part
            )
        )
    return lines


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        try:
            notification = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_error(400, "not JSON")
            return
        for line in alert_lines(notification):
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one line per alert is the log; no access log beside it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside its container
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"webhook receiver listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
