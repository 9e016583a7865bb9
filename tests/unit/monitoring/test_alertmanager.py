"""Alertmanager: Prometheus notifies it, its routes end at a receiver it defines, amtool
accepts its config, and the example webhook receiver logs what it is sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from monitoring.alertmanager.webhook_receiver import Handler, alert_lines

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

NOTIFICATION = {
    "version": "4",
    "status": "firing",
    "receiver": "example-webhook",
    "groupLabels": {"alertname": "LlmgwErrorBudgetBurnFast"},
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "LlmgwErrorBudgetBurnFast",
                "severity": "critical",
                "provider": "yandexgpt",
                "model": "yandexgpt",
                "channel": "rc",
            },
            "annotations": {
                "summary": "yandexgpt yandexgpt:rc: 20% of jobs end failed",
                "runbook_url": "docs/runbook.md#llmgwerrorbudgetburnfast",
            },
            "startsAt": "2026-12-03T12:00:00Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "LlmgwApiDown", "severity": "critical"},
            "annotations": {"summary": "No llmgw API instance answers /metrics"},
        },
    ],
}


def routes(route: dict) -> list[dict]:
    return [route, *(r for child in route.get("routes", []) for r in routes(child))]


def test_every_route_ends_at_a_defined_receiver_and_compose_serves_it():
    config = yaml.safe_load(CONFIG.read_text())
    names = {receiver["name"] for receiver in config["receivers"]}
    assert all(route["receiver"] in names for route in routes(config["route"]))
    hooks = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert hooks == ["http://alertmanager-webhook:5001/"]
    webhook = COMPOSE["services"]["alertmanager-webhook"]
    assert webhook["command"][-2:] == ["--port", "5001"]
    assert "alertmanager" in COMPOSE["services"]["prometheus"]["depends_on"]
    assert set(config["route"]["group_by"]) == {"alertname", "provider", "model", "channel"}


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_accepts_the_config():
    result = subprocess.run(
        ["amtool", "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_lines_name_status_alert_version_summary_and_runbook():
    assert alert_lines(NOTIFICATION) == [
        "FIRING | LlmgwErrorBudgetBurnFast | critical | yandexgpt:yandexgpt:rc | "
        "yandexgpt yandexgpt:rc: 20% of jobs end failed | "
        "docs/runbook.md#llmgwerrorbudgetburnfast",
        "RESOLVED | LlmgwApiDown | critical | No llmgw API instance answers /metrics",
    ]


def test_the_receiver_logs_what_alertmanager_posts(capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        ok = requests.post(url, data=json.dumps(NOTIFICATION), timeout=10)
        bad = requests.post(url, data="not json", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert ok.status_code == 200 and bad.status_code == 400
    out = capsys.readouterr().out
    assert out.splitlines() == alert_lines(NOTIFICATION)
