"""WSGI entry point for gunicorn: `gunicorn 'llmgw.app:create_app()'`."""

from api.app import create_app

__all__ = ["create_app"]
