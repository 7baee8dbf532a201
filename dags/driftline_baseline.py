"""
### driftline baseline: profile a model's training data into a new baseline version

Trigger it from the UI with the model's name (and optionally another training-data
location). It writes `baselines/<model>/<version>/` in the store: SageMaker-format
`statistics.json` and suggested `constraints.json`, the Great Expectations suite
`expectations.json` derived from them, and a reference sample. Versions are never
overwritten; monitoring runs use the newest one unless a model file pins a version.
With `absorb_feedback`, the new version takes in people's answers to drift alerts given since
the baseline in use (`feedback.json`: rebased features, widened thresholds, by whose answer).
The CLI equivalent is `driftline baseline --model <name> [--absorb-feedback]`.
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from driftline_airflow.runtime import fail_clearly, get_store, load_configs, log_summary, resolver

_models = sorted(load_configs().models)

with DAG(
    dag_id="driftline_baseline",
    description="Build a new baseline version for a monitored model",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # version numbers are taken in order; two runs at once could pick the same one
    tags=["baseline", "driftline"],
    doc_md=__doc__,
    params={
        "model": Param(_models[0] if _models else "", type="string", enum=_models or [""],
                       description="Model to baseline (a file in include/monitors)"),
        "training_data": Param("", type="string",
                               description="Training data location (Parquet/CSV, file:// or s3://); "
                                           "empty: the model file's baseline.training_data"),
        "absorb_feedback": Param(False, type="boolean",
                                 description="Absorb people's answers to drift alerts given since the baseline "
                                             "in use: 'expected' rebases the feature's reference on the answered "
                                             "intervals, 'false positive' widens its threshold"),
    },
) as dag:

    @task
    def create_baseline(params=None) -> dict:
        from driftline.config import ConfigError
        from driftline.stages.baseline import create_baseline as create

        with fail_clearly():
            models = load_configs().models
            if params["model"] not in models:
                raise ConfigError("params.model", [f"{params['model']!r} is not a loaded model ({sorted(models)})"])
            cfg = models[params["model"]]
            store = get_store()
            out = create(cfg, store, resolver=resolver(cfg.capture.conn_id),
                         training_data=params.get("training_data") or None,
                         absorb_feedback=bool(params.get("absorb_feedback")))
        log_summary(f"baseline {cfg.name}", [out["summary"]], out["uri"])
        return out

    create_baseline()
