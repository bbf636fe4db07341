# aibot: a small two-stage image. The first stage builds a virtualenv (CPU-only torch
# from PyTorch's CPU wheel index: the PyPI default is a multi-GB CUDA build); the
# second copies only that virtualenv onto a slim Python and runs as a non-root user.
#   docker build -t aibot .            (or: docker compose up, see compose.yaml)

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/aibot
ENV PATH=/opt/aibot/bin:$PATH
# torch first, from the CPU index, so that installing aibot finds it already satisfied
RUN pip install --no-cache-dir "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY patterns ./patterns
COPY migrations ./migrations
COPY alembic.ini ./
# the project itself (its dependencies are pinned by its pyproject), not a bare package
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[local]"

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="aibot" \
      org.opencontainers.image.description="AI assistant for Slack, Discord and the terminal" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 aibot \
 && useradd --system --uid 10001 --gid aibot --home-dir /data --create-home aibot
COPY --from=build /opt/aibot /opt/aibot
# no secret here: TOKENIZERS_PARALLELISM is a switch of the tokenizers library
# hadolint ignore=DL3064
ENV PATH=/opt/aibot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    AIBOT_DATA_DIR=/data \
    AIBOT_HTTP_HOST=0.0.0.0 \
    AIBOT_HTTP_PORT=8080
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AIBOT_HTTP_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["aibot"]
CMD ["run"]
