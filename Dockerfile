# Airflow image for this repo: the official Airflow 3.3 image plus the pinned lock.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt /opt/lakehouse/requirements.txt
RUN pip install --no-cache-dir -r /opt/lakehouse/requirements.txt

# The repo itself is mounted at /opt/lakehouse by docker-compose.yml (dags, plugins, packages, dbt project).
ENV PYTHONPATH=/opt/lakehouse \
    LAKEHOUSE_DATA_DIR=/opt/lakehouse/data
WORKDIR /opt/lakehouse
