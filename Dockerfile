# ld-insights-etl as a container image: slim, non-root, the dependencies exactly as uv.lock pins them.
#   docker build -t ld-insights-etl .
#   docker run --rm -e LD_API_TOKEN -v etl-data:/data ld-insights-etl sync
# The warehouse and config live in /data (a volume); see docs/operations.md.

FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv PIP_DISABLE_PIP_VERSION_CHECK=1
# The same uv as the Makefile's, from PyPI.
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
# Dependencies first (a layer that changes only with the lock), then the project itself.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY etl ./etl
COPY sql ./sql
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin etl \
    && mkdir /data && chown etl /data
COPY --from=build /app/.venv /app/.venv
COPY config.toml /etc/etl/config.toml
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
WORKDIR /data
# /data holds the warehouse (config.toml's relative path resolves here); mount a volume on it.
VOLUME ["/data"]
ENTRYPOINT ["etl"]
CMD ["sync", "--config", "/etc/etl/config.toml", "--log-format", "json"]
