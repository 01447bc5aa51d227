# Grace Metrics API server: docker build -t grace-metrics . && docker run -p 8000:8000 -e GRACE_METRICS_WAREHOUSE=postgresql+asyncpg://... grace-metrics
# Without GRACE_METRICS_WAREHOUSE it serves the DuckDB warehouse in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GRACE_METRICS_WAREHOUSE=duckdb:////data/warehouse.duckdb
WORKDIR /app
COPY pyproject.toml README.md ./
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
