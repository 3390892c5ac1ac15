# bulkops as a batch container: multi-stage, slim, non-root, exec-form entrypoint.
# Build: docker build -t bulkops .
# Run:   docker run --rm -v "$PWD/checkpoints:/checkpoints" bulkops delete --config ... --execute
# .ci/run exercises the same install steps in a fresh virtual environment
# (tests/test_container.py), since no Docker engine runs where CI runs.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bulkops ./bulkops
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    BULKOPS_CHECKPOINT_DIR=/checkpoints \
    BULKOPS_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN python -m pip install --no-index --find-links=/wheels bulkops \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin bulkops \
    && mkdir -p /checkpoints && chown 10001:10001 /checkpoints && chmod 0700 /checkpoints
USER 10001:10001
WORKDIR /checkpoints
VOLUME ["/checkpoints"]
# bulkops is PID 1: it handles SIGTERM itself (stop intake, drain, flush, exit 75).
ENTRYPOINT ["bulkops"]
CMD ["--help"]
