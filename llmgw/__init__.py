"""llmgw composition root: settings, CLI, app and Celery factories."""

__version__ = "0.1.0"
