"""docker-compose.yaml is a production deployment (no Docker engine here to run it: the
healthcheck commands run against real Airflow components in test_backfill): every long-running
service has a healthcheck and a restart policy; the image is built once from the Dockerfile,
self-contained (no code mounted); task logs on a volume the scheduler and the API server share;
a Fernet key; named users, not "everyone is admin"; the demo opt-in; secrets only from .env."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
LONG_RUNNING = ("postgres", "minio", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                "airflow-triggerer")


def _compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())


def test_every_long_running_service_has_a_healthcheck_and_restarts():
    services = _compose()["services"]
    for name in LONG_RUNNING:
        s = services[name]
        assert s.get("healthcheck", {}).get("test"), name
        assert s.get("restart") == "unless-stopped", name
    for name in ("minio-init", "airflow-init"):  # one-shot steps must not loop
        assert services[name]["restart"] == "no"


def test_the_image_is_built_once_and_self_contained():
    services = _compose()["services"]
    airflow = {n: s for n, s in services.items() if s.get("image", "").startswith("driftline-airflow")}
    assert set(airflow) >= {"airflow-init", "minio-init", "airflow-apiserver", "airflow-scheduler",
                            "airflow-dag-processor", "airflow-triggerer"}
    built = [n for n, s in airflow.items() if "build" in s]
    assert built == ["airflow-init"] and airflow["airflow-init"]["build"]["dockerfile"] == "Dockerfile"
    assert all(s["pull_policy"] == "never" for n, s in airflow.items() if n != "airflow-init")
    dockerfile = (PROJECT / "Dockerfile").read_text()
    for folder in ("include", "dags", "plugins"):
        assert re.search(rf"^COPY .*\b{folder}\b /opt/driftline/{folder}$", dockerfile, re.M), folder
    assert "pip check" in dockerfile and "-r /opt/driftline/requirements.txt" in dockerfile
    for s in airflow.values():  # only configuration is mounted: model files, logs, the users' passwords
        targets = {v.split(":")[1] for v in s.get("volumes", [])}
        assert targets <= {"/opt/driftline/monitors", "/opt/airflow/logs", "/opt/airflow/auth"}, targets


def test_logs_on_a_shared_volume_fernet_named_users_demo_opt_in():
    doc = _compose()
    services = doc["services"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-triggerer"):
        assert "airflow-logs:/opt/airflow/logs" in services[name]["volumes"], name
    assert {"airflow-logs", "airflow-auth"} <= set(doc["volumes"])
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "false"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith("${AIRFLOW_USERS:?")
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"
    init = services["airflow-init"]
    assert init["environment"]["DRIFTLINE_DEMO"] == "${DRIFTLINE_DEMO:-0}"
    assert 'if [ "$${DRIFTLINE_DEMO}" = "1" ]' in init["command"][1]
    # no secret has a default: each must come from .env
    text = (PROJECT / "docker-compose.yaml").read_text()
    for secret in ("MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY"):
        assert re.findall(rf"\${{{secret}(:?[-?])", text) and not re.findall(rf"\${{{secret}:-", text), secret
    example = (PROJECT / ".env.example").read_text()
    for var in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET",
                "AIRFLOW_FERNET_KEY", "AIRFLOW_USERS"):
        assert re.search(rf"^{var}=", example, re.M), var


def healthcheck_commands() -> dict[str, str]:
    """The Airflow components' healthcheck shell commands (test_backfill runs them)."""
    services = _compose()["services"]
    return {n: services[n]["healthcheck"]["test"][1] for n in ("airflow-scheduler", "airflow-dag-processor",
                                                               "airflow-triggerer")}
