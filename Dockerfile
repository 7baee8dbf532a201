# driftline's Airflow image, built once and self-contained: Airflow 3.3.2 with driftline, its
# DAGs, plugin and library. docker-compose.yaml builds it; every Airflow service runs it.
FROM apache/airflow:3.3.2-python3.11

# Dependencies first (a layer that changes only with the pins). requirements.txt is the set the
# test suite runs on (./scripts/test.sh); where it differs from Airflow's constraints for 3.3.2,
# that tested set is what the image gets, and `pip check` fails the build on any conflict.
COPY --chown=airflow:root requirements.txt pyproject.toml README.md /opt/driftline/
COPY --chown=airflow:root include /opt/driftline/include
RUN pip install --no-cache-dir -r /opt/driftline/requirements.txt -e /opt/driftline && pip check
COPY --chown=airflow:root dags /opt/driftline/dags
COPY --chown=airflow:root plugins /opt/driftline/plugins

# Folders the compose file puts volumes on, owned by airflow so new volumes are writable.
USER root
RUN mkdir -p /opt/airflow/auth /opt/driftline/monitors && chown -R airflow:root /opt/airflow/auth /opt/driftline/monitors
USER airflow

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/driftline/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/driftline/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=false
