"""The Flask application factory. The composition root (`llmgw.app.create_app`) passes the
services; this package never builds them."""

from __future__ import annotations

from flask import Flask

from api import (
    admin,
    batches,
    callbacks,
    chat,
    docs,
    embeddings,
    feedback,
    health,
    jobs,
    keys,
    limits,
    models,
    tokens,
    yandex_compat,
)
from api.context import ApiServices
from api.errors import register_error_handlers
from api.observability import register_request_metrics
from routing.cache import begin_snapshot_scope, end_snapshot_scope


def create_app(services: ApiServices) -> Flask:
    app = Flask("llmgw")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = services.api_config.max_body_bytes
    app.extensions["llmgw"] = services
    register_error_handlers(app)
    register_request_metrics(app)
    app.before_request(begin_snapshot_scope)  # one catalogue read per request
    app.teardown_request(lambda _exc: end_snapshot_scope())
    app.register_blueprint(health.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(callbacks.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(models.bp)
    app.register_blueprint(embeddings.bp)
    app.register_blueprint(tokens.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin.keys_bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(limits.bp)
    app.register_blueprint(limits.usage_bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(yandex_compat.bp)
    return app
