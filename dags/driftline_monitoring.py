"""
### driftline monitoring: one DAG per model file in `include/monitors/`

Each run monitors one data interval of one model (`data_interval_start` to
`data_interval_end`, from the model's schedule):

1. **wait_for_capture** / **ingest**: once the interval's capture is complete (its end +
   `capture.write_delay`: objects land a little after their records; a sensor that gives its
   worker slot back), reads the captured inference records whose capture time falls in the
   interval (from every `yyyy/mm/dd/hh` folder it touches, so sub-hourly schedules read exactly
   their interval), normalises them to the model's schema, writes `batch.parquet`; malformed
   records go to `quarantine.jsonl` with their source, line and reason. It first pins the
   baseline that judges the interval (`baseline.json`: the one in effect when the interval is
   first evaluated; the Param `baseline` asks for another, recorded).
2. **data_quality**: validates the batch with Great Expectations against the model's
   baseline; writes the GX result, Data Docs and `constraint_violations.json`.
3. **plan_partitions** / **profile_partition** (mapped, one task per `drift.partition_rows`
   rows of the batch, in parallel with data_quality): profile each partition like the
   baseline (moments, KLL sketches, counts on the baseline's bins, category counts).
4. **drift**: merges the partition profiles and compares the batch with the baseline's
   profile, feature by feature (method by type and sample size, or as the model file says),
   on the predictions, and jointly (PCA reconstruction, domain classifier); ranks the
   drifted features by importance; writes `drift.json` and `baseline_drift_check` violations.
5. **wait_for_labels** (models with a `labels` section): a sensor in reschedule mode (it
   gives its worker slot back between looks, every `labels.poke_interval`): ingests the
   labels that arrived and stops once the interval's label coverage reaches
   `labels.min_coverage`, or at interval end + `labels.delay`, whichever comes first; the
   run then goes on with the coverage it has. An interval without predictions (fewer than
   `thresholds.min_rows`) has nothing to wait for: the first look ends the wait, and the run
   ends with the verdict "no data".
6. **model_quality**: merges the interval's predictions with every label arrived so far
   (latest label wins), computes realized metrics when there are enough labels and
   estimated ones (from the model's calibrated confidence) in any case, overall and per
   segment; writes `model_quality.json`, `merged.parquet` and `model_quality_check`
   violations; then re-evaluates earlier intervals whose labels changed since.
7. **alert_data** (after drift, even when a stage failed) and **alert_quality** (after model
   quality, for the interval and each re-evaluated one): turn violations into alerts under the
   model's `alerting` policy (severity, persistence "N of the last M intervals"), one incident
   per check and subject, announced once when it opens and once when it resolves, on the
   model's `alerts` routes (task log, email, Slack, SNS, webhook: Airflow notifiers, credentials
   from Airflow connections). What went out is recorded in the store (`alerts/<model>/`) and
   never sent again: not on a retry, a re-run or a backfill. Intervals may be evaluated in any
   order (a backfill after the scheduled runs, overlapping runs): each alert task brings the
   later intervals' records up to date, so "N of the last M" gives the incidents an in-order run
   gives; anything already announced that no longer holds is withdrawn by a RE-JUDGED message.
8. **retrain_decision** / **request_retraining** (models with `retraining.enabled`): when the
   retraining policy holds, updates the Asset `driftline://<model>/retraining`, which
   schedules the model's retraining DAG (`driftline_retrain_<model>`).
9. **record_run**: writes `run.json` and the interval's rows of the metrics history
   (and, with `metrics_out.cloudwatch.enabled`, publishes them to CloudWatch).
10. **incidents_opened** / **announce_incidents**: when alert incidents opened in this run,
   updates the Asset `driftline://<model>/alerts` with their keys, which schedules the model's
   feedback DAG (`driftline_feedback_<model>`): it asks a person about each one in Airflow's
   Required Actions (acknowledge, false positive, expected, with a comment).
11. **report**: writes the run's self-contained HTML report (`report.html`: reference vs
   current distributions per feature, model quality, bias, data quality, alerts) and logs the
   same verdict as a compact table.

Every artifact is keyed by the interval's start, so a re-run or a backfill of an interval
replaces its own artifacts and nothing else. Artifacts: `runs/<model>/<interval>/` in the
store (`DRIFTLINE_STORE_URL`). One run of an interval at a time: ingest takes the interval's
lease (`lease.json`) or fails naming the run that holds it; every later task checks this run
still holds it; check_run releases it.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from driftline.config import ModelConfig
from driftline_airflow.links import add_links
from driftline_airflow.runtime import (
    alert_sender,
    alerts_asset,
    fail_clearly,
    get_store,
    log_summary,
    logged_delivery_failure,
    publish_model_dags,
    report_url,
    report_url_of,
    resolver,
    retraining_asset,
    stage,
)


def build_monitoring_dag(cfg: ModelConfig) -> DAG:
    with DAG(
        dag_id=f"driftline_monitor_{cfg.name}",
        description=f"Monitor {cfg.name}: ingest captured traffic, data quality, drift ({cfg.schedule})",
        schedule=CronDataIntervalTimetable(cfg.cron, timezone="UTC"),
        start_date=cfg.start_date,
        catchup=False,
        max_active_runs=cfg.concurrent_runs,
        tags=sorted({"driftline", "monitoring", *cfg.tags}),
        doc_md=__doc__ + f"\n\nModel file: `{cfg.source}`. {cfg.description}",
        default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
        params={"baseline": Param(
            "", type="string", title="Baseline version",
            description="Empty (the default): judge each interval against the baseline pinned when it was first "
                        "evaluated, so a re-run or backfill reproduces its verdict. A version such as v1 re-judges "
                        "the interval against it; the change is recorded in the interval's baseline.json.")},
    ) as dag:

        @task
        def ingest(data_interval_start=None, data_interval_end=None, params=None, dag_run=None) -> dict:
            from driftline.pipeline.interval import run_ingest
            from driftline.pipeline.summary import next_step

            store = get_store()
            asked = str((params or {}).get("baseline") or "").strip()
            who = getattr(dag_run, "triggering_user_name", None) or "unknown"
            with stage(cfg, "ingest", data_interval_start, [cfg.capture.uri]):
                out = run_ingest(cfg, store, data_interval_start, data_interval_end,
                                 resolver=resolver(cfg.capture.conn_id), baseline=asked or None,
                                 by=f"{who} (Param 'baseline' of run {getattr(dag_run, 'run_id', '?')})",
                                 run_id=dag_run.run_id)
            log_summary(f"ingest {cfg.name}", [out["summary"]], store.uri(store.run_prefix(cfg.name, data_interval_start)),
                        next_step=next_step("ingest", out, cfg.name), report=report_url(cfg.name, data_interval_start))
            return out

        @task
        def data_quality(ingested: dict, data_interval_start=None, run_id=None) -> dict:
            from driftline.pipeline.interval import run_data_quality
            from driftline.pipeline.summary import interval_summary_lines, next_step

            store = get_store()
            batch = store.uri(store.run_prefix(cfg.name, data_interval_start), "batch.parquet")
            with stage(cfg, "data_quality", data_interval_start, [batch]):
                out = run_data_quality(cfg, store, data_interval_start, run_id=run_id)
            log_summary(f"data_quality {cfg.name}", interval_summary_lines("data_quality", out),
                        out["violations_uri"], next_step=next_step("data_quality", out, cfg.name),
                        report=report_url(cfg.name, data_interval_start))
            return {k: v for k, v in out.items() if k != "findings"} | {"findings": out["findings"][:20]}

        @task
        def plan_partitions(ingested: dict, data_interval_start=None) -> list[dict]:
            from driftline.pipeline.interval import plan_partitions as plan

            parts = plan(cfg, get_store(), data_interval_start)
            log_summary(f"plan_partitions {cfg.name}",
                        [f"{parts[0]['rows']} rows -> {len(parts)} partition(s) of at most {cfg.drift.partition_rows}"])
            return parts

        @task(map_index_template="{{ partition_rows }}")
        def profile_partition(part: dict, data_interval_start=None, run_id=None) -> str:
            from airflow.sdk import get_current_context

            from driftline.pipeline.interval import profile_partition as profile

            get_current_context()["partition_rows"] = f"rows {part['start']}-{part['stop']}"
            store = get_store()
            batch = store.uri(store.run_prefix(cfg.name, data_interval_start), "batch.parquet")
            with stage(cfg, "profile_partition", data_interval_start, [f"{batch} rows {part['start']}-{part['stop']}"]):
                rel = profile(cfg, store, data_interval_start, part, run_id=run_id)
            log_summary(f"profile_partition {cfg.name} #{part['index']}",
                        [f"profiled rows {part['start']}-{part['stop']} of {part['rows']}"], store.uri(rel))
            return rel

        @task
        def drift(parts: list[str], data_interval_start=None, data_interval_end=None, run_id=None) -> dict:
            from driftline.pipeline.interval import run_drift
            from driftline.pipeline.summary import interval_summary_lines, next_step

            store = get_store()
            with stage(cfg, "drift", data_interval_start, [store.uri(p) for p in parts][:5]):
                out = run_drift(cfg, store, data_interval_start, data_interval_end, list(parts), run_id=run_id)
            log_summary(f"drift {cfg.name}", interval_summary_lines("drift", out), out["drift_uri"],
                        next_step=next_step("drift", out, cfg.name), report=report_url(cfg.name, data_interval_start))
            return out

        if cfg.labels is not None:
            labels = cfg.labels

            @task.sensor(mode="reschedule", poke_interval=labels.poke_interval.total_seconds(),
                         # the poke itself ends the wait at interval end + delay; the timeout
                         # only guards against a poke that can never run
                         timeout=(labels.delay + 2 * labels.poke_interval).total_seconds(), soft_fail=True)
            def wait_for_labels(ingested: dict, data_interval_start=None, data_interval_end=None, run_id=None):
                from airflow.sdk.bases.sensor import PokeReturnValue

                from driftline.pipeline.interval import look_for_labels

                store = get_store()
                with fail_clearly():  # each look renews the run's lease on the interval
                    look = look_for_labels(cfg, store, data_interval_start, data_interval_end,
                                           resolver=resolver(labels.conn_id), run_id=run_id)
                log_summary(f"wait_for_labels {cfg.name}", [look["summary"]])
                return PokeReturnValue(is_done=look["done"], xcom_value=look)

        @task(trigger_rule="none_failed")
        def model_quality(ingested: dict, waited: dict | None = None, data_interval_start=None,
                          data_interval_end=None, run_id=None) -> dict:
            # none_failed: a wait that timed out (skipped) still gets its interval evaluated
            from driftline.pipeline.interval import run_labels_and_quality
            from driftline.pipeline.summary import interval_summary_lines, next_step

            store = get_store()
            with stage(cfg, "model_quality", data_interval_start, [cfg.labels.uri] if cfg.labels else []):
                out = run_labels_and_quality(cfg, store, data_interval_start, data_interval_end, waited=waited,
                                             resolver=resolver(cfg.labels.conn_id) if cfg.labels else None,
                                             run_id=run_id)
            lines = interval_summary_lines("model_quality", out) + [out[k] for k in ("reevaluate",) if k in out]
            log_summary(f"model_quality {cfg.name}", lines, out["model_quality_uri"],
                        next_step=next_step("model_quality", out, cfg.name),
                        report=report_url(cfg.name, data_interval_start))
            return out

        # all_done: data-quality alerts go out even when drift failed. One alert task of a kind at
        # a time across runs (max_active_tis_per_dag): each brings the records of later intervals
        # up to date (driftline.stages.alerts.evaluate_in_order), so runs may finish in any order -- a
        # backfill after the scheduled runs, overlapping runs -- and give the same incidents
        # without depends_on_past, which Airflow's backfills refuse by default.
        @task(trigger_rule="all_done", max_active_tis_per_dag=1)
        def alert_data(data_interval_start=None, **context) -> dict:
            from driftline.pipeline.interval import run_alerts
            from driftline.pipeline.summary import alert_brief, next_step

            store = get_store()
            where = store.uri("alerts", cfg.name)
            with logged_delivery_failure(f"alert_data {cfg.name}", where), stage(cfg, "alert_data", data_interval_start):
                out = run_alerts(cfg, store, data_interval_start, "data", send=alert_sender(context),
                                 report_url=report_url_of(cfg.name), run_id=context["run_id"])
            log_summary(f"alert_data {cfg.name}", out["lines"], where, next_step=next_step("alerts", out, cfg.name),
                        report=report_url(cfg.name, data_interval_start))
            return alert_brief(out)

        @task(trigger_rule="all_done", max_active_tis_per_dag=1)
        def alert_quality(data_interval_start=None, **context) -> dict:
            from driftline.pipeline.interval import run_alerts
            from driftline.pipeline.summary import alert_brief, next_step

            performance = context["ti"].xcom_pull(task_ids="model_quality") or {}
            store = get_store()
            where = store.uri("alerts", cfg.name)
            with logged_delivery_failure(f"alert_quality {cfg.name}", where), \
                    stage(cfg, "alert_quality", data_interval_start):
                out = run_alerts(cfg, store, data_interval_start, "quality", send=alert_sender(context),
                                 also=performance.get("reevaluated", []), report_url=report_url_of(cfg.name),
                                 run_id=context["run_id"])
            log_summary(f"alert_quality {cfg.name}", out["lines"], where,
                        next_step=next_step("alerts", out, cfg.name), report=report_url(cfg.name, data_interval_start))
            return alert_brief(out)

        # all_done: a run whose stage failed still records what the others found (a failed
        # stage's result is None, and run.json names it incomplete)
        @task(trigger_rule="all_done")
        def record_run(ingested: dict | None, quality: dict | None, drifted: dict | None, performance: dict | None,
                       data_interval_start=None, data_interval_end=None, **context) -> dict:
            from driftline.pipeline.records import record_run as record
            from driftline.pipeline.summary import next_step

            store = get_store()
            alerts = {f"alerts_{g}": context["ti"].xcom_pull(task_ids=f"alert_{g}") for g in ("data", "quality")}
            with stage(cfg, "record_run", data_interval_start):
                out = record(cfg, store, data_interval_start, data_interval_end,
                             {"ingest": ingested, "data_quality": quality, "drift": drifted,
                              "model_quality": performance, **alerts}, run_id=context["run_id"])
            if cfg.metrics_out.cloudwatch.enabled:
                from driftline.store.history import interval_history
                from driftline_airflow.notify import publish_cloudwatch

                sent = publish_cloudwatch(cfg.metrics_out.cloudwatch, cfg.name, data_interval_start,
                                          interval_history(store, cfg.name, data_interval_start))
                out["cloudwatch"] = f"{sent} metric datum(s) to CloudWatch {cfg.metrics_out.cloudwatch.namespace}"
            checks = ", ".join(out["violation_checks"]) or "none"
            log_summary(f"run {cfg.name} {out['interval']}: {out['status'].replace('_', ' ').upper()}",
                        [f"baseline {out['baseline']}; {out['violations']} violation(s); checks failed: {checks}",
                         f"drift: {out['drift']}", f"model quality: {out['model_quality']}",
                         *(f"alerts: {x['summary']}" for x in alerts.values() if x),
                         *([out["cloudwatch"]] if "cloudwatch" in out else [])],
                        out["artifacts"], next_step=next_step("run", out, cfg.name),
                        report=report_url(cfg.name, data_interval_start))
            return out

        @task(trigger_rule="all_done")
        def report(data_interval_start=None, run_id=None) -> str:
            # all_done: a run that failed half-way still gets its page, saying what did not run
            from driftline.pipeline.interval import write_report
            from driftline.render.report import summary_table

            store = get_store()
            with stage(cfg, "report", data_interval_start):
                uri = write_report(cfg, store, data_interval_start, run_id=run_id)
            log_summary(f"report {cfg.name}", summary_table(cfg, store, data_interval_start), uri,
                        next_step="open the report: every stage's findings, distributions and alerts on one page",
                        report=report_url(cfg.name, data_interval_start))
            return uri

        ingested = ingest()
        if cfg.capture.write_delay:
            # capture objects land up to write_delay after their records: a scheduled run waits
            # (giving its worker slot back) so it reads what a later backfill would read
            from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor

            TimeDeltaSensor(task_id="wait_for_capture", delta=cfg.capture.write_delay, mode="reschedule",
                            poke_interval=min(60.0, cfg.capture.write_delay.total_seconds()),
                            timeout=cfg.capture.write_delay.total_seconds() + 3600) >> ingested
        quality = data_quality(ingested)
        parts = profile_partition.expand(part=plan_partitions(ingested))
        # the stages after ingest need only the batch, not each other: each writes its own
        # violations (violations/<stage>.json), so a failed drift does not stop model quality
        drifted = drift(parts)
        waited = wait_for_labels(ingested) if cfg.labels is not None else None
        performance = model_quality(ingested, waited)
        alerted_data = alert_data()
        [quality, drifted] >> alerted_data
        alerted_quality = alert_quality()
        [performance, alerted_data] >> alerted_quality
        recorded = record_run(ingested, quality, drifted, performance)
        [alerted_data, alerted_quality] >> recorded
        reported = report()
        recorded >> reported

        # The run's last word: a run whose stage failed fails (its report still renders, saying
        # what did not run), with an alert of its own; a run that completed every stage is green.
        @task(trigger_rule="all_done", retries=0)
        def check_run(data_interval_start=None, **context) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from driftline.pipeline.check import check_run as check
            from driftline.pipeline.summary import STAGES

            ti = context["ti"]
            completed = {t: ti.xcom_pull(task_ids=t) is not None for t in STAGES}
            store = get_store()
            out = check(cfg, store, data_interval_start, completed, send=alert_sender(context),
                        report_url=report_url_of(cfg.name), run_id=context["run_id"])
            failed = bool(out["failed"] or out.get("refused"))
            log_summary(f"check_run {cfg.name}: " + ("FAILED" if failed else "complete"), out["lines"],
                        store.uri(store.run_prefix(cfg.name, data_interval_start)),
                        next_step=("each failed stage's next step is above; once fixed, clear the failed task "
                                   "(its downstream tasks run again)") if out["failed"] else "nothing to do",
                        report=report_url(cfg.name, data_interval_start))
            if failed:
                raise AirflowFailException(out["summary"])
            return {"failed": [], "summary": out["summary"]}

        checked = check_run()
        reported >> checked

        if cfg.retraining.enabled:
            asset = retraining_asset(cfg.name)

            @task.short_circuit
            def retrain_decision(alerted: dict, data_interval_start=None) -> dict | bool:
                from driftline.stages.retrain_policy import decide

                out = decide(cfg, get_store(), data_interval_start, alerted.get("intervals", []))
                log_summary(f"retrain_decision {cfg.name}",
                            [("REQUEST retraining: " if out["request"] else "no retraining: ") + out["why"]])
                return out if out["request"] else False

            @task(outlets=[asset])
            def request_retraining(request: dict, *, outlet_events=None) -> dict:
                from driftline.stages.retrain_policy import mark_emitted

                outlet_events[asset].extra = {k: request[k] for k in ("model", "id", "interval", "end", "why",
                                                                       "labelled", "window_days")}
                out = mark_emitted(get_store(), cfg.name, request["id"])
                log_summary(f"request_retraining {cfg.name}",
                            [f"asset {asset.uri} updated: driftline_retrain_{cfg.name} will train a challenger",
                             f"why: {request['why']}"])
                return {"id": out["id"], "why": out["why"]}

            request_retraining(retrain_decision(alerted_quality))

        # Announce the incidents that opened in this run: the Asset schedules the model's feedback
        # DAG (driftline_feedback_<model>), which asks a person about each one in Airflow.
        incidents_asset = alerts_asset(cfg.name)

        # all_done: incidents opened by one group are announced when the other group's task failed
        @task.short_circuit(trigger_rule="all_done")
        def incidents_opened(data_interval_start=None, **context) -> dict | bool:
            from driftline.stages.feedback import opened_incidents
            from driftline.store import interval_key

            briefs = [context["ti"].xcom_pull(task_ids=f"alert_{g}") or {} for g in ("data", "quality")]
            keys = opened_incidents(cfg.name, briefs)
            log_summary(f"incidents_opened {cfg.name}",
                        [f"{len(keys)} incident(s) opened" + ("" if keys else ": nothing to announce"), *keys[:20]])
            if not keys:
                return False
            return {"model": cfg.name, "interval": interval_key(data_interval_start), "incidents": keys}

        @task(outlets=[incidents_asset])
        def announce_incidents(opened: dict, *, outlet_events=None) -> dict:
            outlet_events[incidents_asset].extra = opened
            log_summary(f"announce_incidents {cfg.name}",
                        [f"asset {incidents_asset.uri} updated: driftline_feedback_{cfg.name} asks about "
                         f"{len(opened['incidents'])} incident(s)"])
            return opened

        opened = incidents_opened()
        [alerted_data, alerted_quality] >> opened
        announce_incidents(opened)
    return dag


def _build(cfg: ModelConfig) -> DAG:
    dag = build_monitoring_dag(cfg)
    add_links(dag, cfg.name)  # "driftline report" / "driftline history" on every task
    return dag


publish_model_dags(globals(), _build, "driftline_monitor_", report_file_errors=True)
