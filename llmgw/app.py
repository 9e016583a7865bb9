"""WSGI entry point for gunicorn: `gunicorn 'llmgw.app:create_app()'`."""

from __future__ import annotations

from flask import Flask

from api.app import create_app as create_api
from llmgw.container import Container
from llmgw.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Flask:
    """The API for `settings` (read from the environment when None), or for a container a
    test has prepared."""
    return create_api(container or Container(settings or load_settings()))
