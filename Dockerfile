# Grace Metrics API server.
#   docker build -t grace-metrics .
# It listens beyond loopback, so it needs API keys (GRACE_METRICS_API_KEYS) or a token key (GRACE_METRICS_JWT_SECRET
# or GRACE_METRICS_JWT_PUBLIC_KEY); without them it refuses to start.
# Over a PostgreSQL warehouse that `grace-metrics etl` loads:
#   docker run -p 8000:8000 -e GRACE_METRICS_API_KEYS=sha256:<digest>:viewer \
#     -e GRACE_METRICS_WAREHOUSE=postgresql+asyncpg://api@dw/metrics grace-metrics
# Over a DuckDB warehouse in the /data volume, loaded before serving and kept fresh by the server itself:
#   docker run -p 8000:8000 -v grace-data:/data -e GRACE_METRICS_HASH_KEY=<secret> grace-metrics \
#     --source postgresql://app@db/grace --etl-every 60
# On an empty /data volume without --source the server exits at once, saying what to run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GRACE_METRICS_WAREHOUSE=duckdb:////data/warehouse.duckdb
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend_urls ./backend_urls
COPY warehouse ./warehouse
COPY metrics ./metrics
COPY graphql_api ./graphql_api
RUN pip install . && useradd --create-home --uid 10001 grace && mkdir /data && chown grace /data
USER grace
VOLUME /data

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
ENTRYPOINT ["grace-metrics", "serve", "--host", "0.0.0.0", "--port", "8000"]
