"""llmgw composition root: settings, CLI, app and Celery factories."""

__version__ = "1.1.0"  # the same as pyproject.toml (tests/unit/llmgw/test_version.py)
