# The MLflow tracking server of docker-compose.yaml's "mlflow" profile, at the very version of
# MLflow that `capsight train` logs with (constraints.txt, the versions CI last passed with): a
# server older than its client can refuse the client's newer calls.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt mlflow && rm /tmp/constraints.txt
