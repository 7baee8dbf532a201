"""Test settings. Airflow reads its configuration when first imported, so the environment
is set here, before any test module imports it: a throw-away AIRFLOW_HOME with a SQLite
metadata DB, no example DAGs, and no deferral (a deferred sensor under dag.test() ignores
its timeout)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="driftline-airflow-home-"))
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
    "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
})
# scripts/env.sh (which test.sh sources) sets these for a user's Airflow; tests choose their own
os.environ.pop("AIRFLOW__API__BASE_URL", None)
os.environ.pop("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", None)
os.environ.pop("DRIFTLINE_STORE_URL", None)
os.environ.pop("DRIFTLINE_DEMO_ROOT", None)
os.environ.pop("DRIFTLINE_MONITORS_DIR", None)
ARTIFACTS = PROJECT / "test-artifacts"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB, once per session (dag.test() needs one)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture
def make_config(tmp_path):
    """Build a validated ModelConfig from a dict, relative locations under tmp_path."""
    from driftline.config import parse_model_config

    def make(**overrides):
        doc = {
            "name": "m", "problem_type": "binary_classification", "start_date": "2026-10-01",
            "features": [{"name": "x", "type": "numeric"}, {"name": "k", "type": "integer"},
                         {"name": "c", "type": "categorical"}, {"name": "b", "type": "boolean"}],
            "prediction": {"label": "pred", "probability": "proba"},
            "capture": {"uri": "capture"}, "baseline": {"training_data": "train.parquet"},
        }
        doc.update(overrides)
        return parse_model_config(doc, "test.yaml", base_dir=tmp_path)

    return make


@pytest.fixture
def s3_server():
    """moto's standalone S3 server on a free loopback port, with one bucket. Yields
    (endpoint_url, bucket)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's servers in one process share their state: start from an empty S3
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                 region_name="us-east-1").create_bucket(Bucket="driftline-test")
    try:
        yield endpoint, "driftline-test"
    finally:
        server.stop()


@pytest.fixture
def s3_conn(s3_server, monkeypatch):
    """moto's S3 server reached as a deployment reaches S3/MinIO: only through the Airflow
    connection aws_default (endpoint_url in its extra), no AWS_* variables. Yields
    (endpoint_url, bucket)."""
    import json

    endpoint, bucket = s3_server
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing-key", "password": "testing-secret",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    # Airflow keeps one filesystem per connection for the process's life: a deployment's
    # connection never moves, but each test's S3 server listens on a new port
    from airflow.sdk.io import store as object_stores

    object_stores._STORE_CACHE.clear()
    yield endpoint, bucket
    object_stores._STORE_CACHE.clear()


#: Every label of the demo week has arrived by then.
DEMO_LABELS_AS_OF = "2026-10-20T00:00:00+00:00"


@pytest.fixture(scope="session")
def labelled_demo_week(tmp_path_factory):
    """Once per session: the demo (40 rows an hour), its first baseline (v1), every day's
    capture ingested and the labels synced -- what retraining reads -- in a store that tests
    copy. Returns {"demo": URL, "store": Path, "manifest": dict, "cfg": ModelConfig}."""
    from datetime import datetime

    from driftline.config import default_monitors_dir, load_all
    from driftline.demo import demo_interval_starts, generate_demo
    from driftline.pipeline.interval import run_ingest
    from driftline.stages.baseline import create_baseline
    from driftline.stages.labels import sync_labels
    from driftline.store import Store

    root = tmp_path_factory.mktemp("demo-week")
    demo = f"file://{root}/demo"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRIFTLINE_DEMO_ROOT", demo)
        cfg = load_all(default_monitors_dir()).models["churn"]
    manifest = generate_demo(demo, rows_per_hour=40, training_rows=6000)
    store = Store(f"file://{root}/store")
    create_baseline(cfg, store)
    for start in demo_interval_starts(manifest):
        run_ingest(cfg, store, start, cfg.interval_end(start))
    sync_labels(cfg, store, now=datetime.fromisoformat(DEMO_LABELS_AS_OF))
    return {"demo": demo, "store": root / "store", "manifest": manifest, "cfg": cfg}
