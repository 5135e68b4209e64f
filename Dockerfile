# Two images from one file.
#   production: the pipeline, its Airflow components and the DAGs, installed from the wheel: no
#               simulators (they are test doubles) and no development tools.
#   sandbox:    production plus the simulators, for the demo topology's one-stop simulator and central
#               sandbox (docker-compose.yml builds this target for those two services only).
FROM python:3.11-slim AS production
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY baocao baocao
COPY connectors connectors
COPY transforms transforms
COPY expectations expectations
COPY dags dags
RUN uv sync --frozen --no-dev --no-editable

FROM production AS sandbox
COPY simulators simulators
RUN uv sync --frozen --no-dev
