# The bot's image: `python -m bot serve` by default; the same image runs `worker` and `socket`.
# Build: docker build -t slack-langgraph-door .   Run the whole layout: docker compose up
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p bot graphs && touch bot/__init__.py graphs/__init__.py \
    && pip install uv==0.13.9 && uv pip install --system . && rm -rf bot graphs build *.egg-info
# bot/dev/ (the local Slack, the playground) is left out by .dockerignore, as pgserver is by the plain install.
COPY bot ./bot
COPY graphs ./graphs
RUN uv pip install --system --no-deps --reinstall-package slack-langgraph-door . && useradd --create-home --uid 10001 bot

USER bot
# The bot needs DATABASE_URL in a container: the embedded PostgreSQL keeps its data on the container's disk,
# which goes with the container.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    LOG_FORMAT=json
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=4)"
CMD ["python", "-m", "bot", "serve"]
