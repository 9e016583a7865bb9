"""The job: its statuses, its typed spec, every transition, the one submission path, events."""
