# One image for the pipeline, its Airflow components and the two simulators.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY baocao baocao
COPY connectors connectors
COPY transforms transforms
COPY expectations expectations
COPY simulators simulators
COPY dags dags
RUN uv sync --frozen --no-dev
