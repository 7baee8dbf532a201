"""
### driftline monitoring: one DAG per model file in `include/monitors/`

Each run monitors one data interval of one model (`data_interval_start` to
`data_interval_end`, from the model's schedule):

1. **ingest**: reads the captured inference records of the interval's `yyyy/mm/dd/hh`
   partitions, normalises them to the model's schema, writes `batch.parquet`; malformed
   records go to `quarantine.jsonl` with their source, line and reason.
2. **data_quality**: validates the batch with Great Expectations against the model's
   baseline; writes the GX result, Data Docs and `constraint_violations.json`.
3. **plan_partitions** / **profile_partition** (mapped, one task per `drift.partition_rows`
   rows of the batch, in parallel with data_quality): profile each partition like the
   baseline (moments, KLL sketches, counts on the baseline's bins, category counts).
4. **drift**: merges the partition profiles and compares the batch with the baseline's
   profile, feature by feature (method by type and sample size, or as the model file says),
   on the predictions, and jointly (PCA reconstruction, domain classifier); ranks the
   drifted features by importance; writes `drift.json` and `baseline_drift_check` violations.
5. **record_run**: writes `run.json` and the interval's rows of the metrics history.

Every artifact is keyed by the interval's start, so a re-run or a backfill of an interval
replaces its own artifacts and nothing else. Artifacts: `runs/<model>/<interval>/` in the
store (`DRIFTLINE_STORE_URL`).
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, task
from driftline_airflow.runtime import ConfigErrorsDag, fail_clearly, get_store, load_configs, log_summary, resolver

from driftline.config import ConfigError, ModelConfig


def build_monitoring_dag(cfg: ModelConfig) -> DAG:
    with DAG(
        dag_id=f"driftline_monitor_{cfg.name}",
        description=f"Monitor {cfg.name}: ingest captured traffic, data quality, drift ({cfg.schedule})",
        schedule=CronDataIntervalTimetable(cfg.cron, timezone="UTC"),
        start_date=cfg.start_date,
        catchup=False,
        max_active_runs=4,
        tags=sorted({"driftline", "monitoring", *cfg.tags}),
        doc_md=__doc__ + f"\n\nModel file: `{cfg.source}`. {cfg.description}",
        default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    ) as dag:

        @task
        def ingest(data_interval_start=None, data_interval_end=None) -> dict:
            from driftline.monitor import run_ingest

            store = get_store()
            with fail_clearly():
                out = run_ingest(cfg, store, data_interval_start, data_interval_end,
                                 resolver=resolver(cfg.capture.conn_id))
            log_summary(f"ingest {cfg.name}", [out["summary"]], store.uri(store.run_prefix(cfg.name, data_interval_start)))
            return out

        @task
        def data_quality(ingested: dict, data_interval_start=None) -> dict:
            from driftline.monitor import interval_summary_lines, run_data_quality

            store = get_store()
            with fail_clearly():
                out = run_data_quality(cfg, store, data_interval_start)
            log_summary(f"data_quality {cfg.name}", interval_summary_lines("data_quality", out),
                        out["violations_uri"])
            return {k: v for k, v in out.items() if k != "findings"} | {"findings": out["findings"][:20]}

        @task
        def plan_partitions(ingested: dict, data_interval_start=None) -> list[dict]:
            from driftline.monitor import plan_partitions as plan

            parts = plan(cfg, get_store(), data_interval_start)
            log_summary(f"plan_partitions {cfg.name}",
                        [f"{parts[0]['rows']} rows -> {len(parts)} partition(s) of at most {cfg.drift.partition_rows}"])
            return parts

        @task(map_index_template="{{ partition_rows }}")
        def profile_partition(part: dict, data_interval_start=None) -> str:
            from airflow.sdk import get_current_context

            from driftline.monitor import profile_partition as profile

            get_current_context()["partition_rows"] = f"rows {part['start']}-{part['stop']}"
            store = get_store()
            with fail_clearly():
                rel = profile(cfg, store, data_interval_start, part)
            log_summary(f"profile_partition {cfg.name} #{part['index']}",
                        [f"profiled rows {part['start']}-{part['stop']} of {part['rows']}"], store.uri(rel))
            return rel

        @task
        def drift(parts: list[str], quality: dict, data_interval_start=None, data_interval_end=None) -> dict:
            # `quality` orders this task after data_quality: both add to constraint_violations.json
            from driftline.monitor import interval_summary_lines, run_drift

            store = get_store()
            with fail_clearly():
                out = run_drift(cfg, store, data_interval_start, data_interval_end, list(parts))
            log_summary(f"drift {cfg.name}", interval_summary_lines("drift", out), out["drift_uri"])
            return out

        @task
        def record_run(ingested: dict, quality: dict, drifted: dict, data_interval_start=None,
                       data_interval_end=None) -> dict:
            from driftline.monitor import record_run as record

            store = get_store()
            out = record(cfg, store, data_interval_start, data_interval_end,
                         {"ingest": ingested, "data_quality": quality, "drift": drifted})
            checks = ", ".join(out["violation_checks"]) or "none"
            log_summary(f"run {cfg.name} {out['interval']}: {out['status'].upper()}",
                        [f"baseline {out['baseline']}; {out['violations']} violation(s); checks failed: {checks}",
                         f"drift: {out['drift']}"],
                        out["artifacts"])
            return out

        ingested = ingest()
        quality = data_quality(ingested)
        parts = profile_partition.expand(part=plan_partitions(ingested))
        record_run(ingested, quality, drift(parts, quality))
    return dag


_loaded = load_configs()
_errors = dict(_loaded.errors)
for _name, _cfg in _loaded.models.items():
    try:
        _dag = build_monitoring_dag(_cfg)
        _dag.validate()
    except Exception as _exc:  # noqa: BLE001 - a model Airflow rejects must not hide the others
        _errors[_cfg.source] = ConfigError(_cfg.source, [f"Airflow rejects the DAG built from it: {_exc}"])
    else:
        globals()[f"driftline_monitor_{_name}"] = _dag
if _errors:
    config_errors = ConfigErrorsDag(_errors)
