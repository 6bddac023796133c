# The hpsearch image: one image for the api, master and worker services of
# docker-compose.yml (`hpsearch serve | master | worker`).
# Dependencies come from requirements.lock (every package pinned with its
# hashes); regenerate it after changing [project.dependencies] with the command
# at its top. The build needs nothing but the Python base image and PyPI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 hpsearch \
    && useradd --system --uid 10001 --gid hpsearch --create-home --home-dir /home/hpsearch hpsearch

WORKDIR /opt/hpsearch
COPY requirements.lock ./
RUN pip install --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY hpsearch ./hpsearch
COPY worker ./worker
COPY api ./api
RUN pip install --no-deps . \
    && mkdir -p /data /checkpoints \
    && chown hpsearch:hpsearch /data /checkpoints

USER hpsearch
WORKDIR /home/hpsearch
ENV HPSEARCH_HOME=/home/hpsearch \
    HPSEARCH_DATA_ROOT=/data \
    HPSEARCH_CHECKPOINT_ROOT=/checkpoints
VOLUME ["/data", "/checkpoints"]

# master and worker: the database and Redis answer; the api service overrides
# this with its own /health (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-m", "hpsearch.cluster.health"]
ENTRYPOINT ["hpsearch"]
CMD ["--help"]
