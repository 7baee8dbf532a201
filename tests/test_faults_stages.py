"""Faults in a stage: a failed stage fails the run visibly, and no stage depends on another's
success where it does not need it (issue: a run whose drift stage failed showed green).

- A renamed column: data quality reports it, drift goes on with every feature present (the
  missing one named "not checked"), model quality runs.
- A stage that fails: the others still run, run.json says the verdict is incomplete and names
  the stage, the report renders saying what failed and what to do, the run's last task
  (check_run) fails the DAG run and sends one alert of its own ("monitoring for churn ...
  could not ..."), never twice; a re-run that completes resolves it.
"""
from __future__ import annotations

import shutil
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from driftline.store import Store


@pytest.fixture
def week(labelled_demo_week, tmp_path, monkeypatch):
    store_dir = tmp_path / "store"
    shutil.copytree(labelled_demo_week["store"], store_dir)
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", labelled_demo_week["demo"])
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{store_dir}")
    return {**labelled_demo_week, "store": Store(f"file://{store_dir}"), "dir": store_dir}


def _day(week, d: int) -> datetime:
    return datetime.fromisoformat(week["manifest"]["interval_starts"][d])


def test_a_renamed_column_leaves_drift_on_every_present_feature(week):
    from driftline.pipeline.interval import plan_partitions, profile_partition, run_data_quality, run_drift, run_ingest

    cfg, store, t = week["cfg"], week["store"], _day(week, 4)
    run_ingest(cfg, store, t, cfg.interval_end(t))
    batch = week["dir"] / Store.run_prefix("churn", t) / "batch.parquet"
    table = pq.read_table(batch)
    pq.write_table(table.rename_columns(["monthly_charge" if c == "monthly_charges" else c
                                         for c in table.column_names]), batch)
    quality = run_data_quality(cfg, store, t)
    assert any(v["constraint_check_type"] == "missing_column_check" and v["feature_name"] == "monthly_charges"
               for v in store.read_json(f"{Store.run_prefix('churn', t)}/violations/data_quality.json")["violations"])
    assert quality["status"] == "violations"
    parts = [profile_partition(cfg, store, t, p) for p in plan_partitions(cfg, store, t)]
    out = run_drift(cfg, store, t, cfg.interval_end(t), parts)
    drift = store.read_json(f"{Store.run_prefix('churn', t)}/drift.json")
    assert drift["features"]["monthly_charges"]["checked"] is False
    assert "missing from the batch" in drift["features"]["monthly_charges"]["why"]
    checked = [f for f, r in drift["features"].items() if r.get("checked")]
    assert len(checked) == len(cfg.features) - 1 and drift["dataset"]["features"] == len(checked)
    # the scenario's other drifted features are still found
    assert {"contract", "data_usage_gb"} <= set(out["drifted"])
    assert drift["multivariate"]["checked"] is False and "monthly_charges" in drift["multivariate"]["why"]


def test_record_run_never_calls_a_run_with_a_missing_stage_ok(week):
    from driftline.pipeline.interval import run_ingest
    from driftline.pipeline.records import record_run

    cfg, store, t = week["cfg"], week["store"], _day(week, 0)
    ingested = run_ingest(cfg, store, t, cfg.interval_end(t))
    out = record_run(cfg, store, t, cfg.interval_end(t),
                     {"ingest": ingested, "data_quality": {"status": "ok", "baseline": "v1"}, "drift": None,
                      "model_quality": {"summary": "fine"}, "alerts_data": {}, "alerts_quality": {}})
    assert out["status"] == "incomplete" and out["incomplete"] == ["drift"]
    run = store.read_json(f"{Store.run_prefix('churn', t)}/run.json")
    assert run["status"] == "incomplete" and run["incomplete"] == ["drift"]


def test_check_run_alerts_once_per_failure_and_resolves_after_a_full_rerun(week):
    from driftline.pipeline.check import check_run, clear_stage_failure, record_stage_failure
    from driftline.pipeline.summary import STAGES
    from driftline.stages.alerts import incidents, read_events

    cfg, store, t = week["cfg"], week["store"], _day(week, 2)
    record_stage_failure(store, "churn", t, "drift", ValueError("the baseline profile lacks column x"),
                         ["file:///s/batch.parquet"], "rebuild the baseline")
    done = {s: s not in ("drift", "alert_data") for s in STAGES}
    sent = []
    out = check_run(cfg, store, t, done, send=lambda route, m: sent.append(m["id"]) or "ok",
                    report_url=lambda k: f"http://ui/driftline/models/churn/runs/{k}/report.html")
    assert out["failed"] == ["drift", "alert_data"]
    assert "- drift FAILED: ValueError: the baseline profile lacks column x (reading file:///s/batch.parquet)" in \
        out["lines"]
    assert "- alert_data did not run (a stage it needs failed)" in out["lines"]
    (event,) = [e for e in read_events(store, "churn") if e["check"] == "stage_failure"]
    assert event["text"].startswith("monitoring for churn 2026-10-03T0000Z could not evaluate drift: ValueError")
    assert "not run because of it: alert_data" in event["text"] and event["severity"] == "critical"
    assert event["links"]["report"].endswith("/runs/2026-10-03T0000Z/report.html")
    # the same failure again (a retry of check_run, a re-run failing alike): not sent again
    assert check_run(cfg, store, t, done, send=lambda route, m: sent.append(m["id"]) or "ok")["failed"]
    assert len([e for e in read_events(store, "churn") if e["check"] == "stage_failure"]) == 1
    # fixed and re-run: every stage completed, the incident resolves
    clear_stage_failure(store, "churn", t, "drift")
    out = check_run(cfg, store, t, dict.fromkeys(STAGES, True), send=lambda route, m: "ok")
    assert out["failed"] == [] and out["messages"] == 1
    (inc,) = [i for i in incidents(store, "churn") if i["check"] == "stage_failure"]
    assert inc["state"] == "resolved" and inc["resolved"] == "2026-10-03T0000Z"


@pytest.mark.e2e
def test_a_failed_stage_fails_the_run_and_the_others_still_run(week, airflow_db):
    from driftline.stages.alerts import read_events
    from driftline_airflow.local_runs import get_dag, run_interval

    cfg, store, t = week["cfg"], week["store"], _day(week, 4)
    profile = week["dir"] / "baselines" / "churn" / "v1" / "profile.json"
    kept = profile.read_bytes()
    profile.write_text('{"truncated": ')  # the drift stage's reference is unreadable
    dag = get_dag("driftline_monitor_churn")
    for task in dag.tasks:
        task.retries = 0
    dr = run_interval(dag, t, cfg.interval_end(t))
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in dr.get_task_instances()}
    assert str(dr.state).endswith("failed"), states
    assert states["profile_partition"] == "failed" and states["drift"] == "upstream_failed"
    # the stages that do not need drift ran, and the run recorded and reported what it has
    for task in ("data_quality", "model_quality", "alert_data", "alert_quality", "record_run", "report"):
        assert states[task] == "success", (task, states)
    assert states["check_run"] == "failed"
    prefix = Store.run_prefix("churn", t)
    run = store.read_json(f"{prefix}/run.json")
    assert "drift" in run["incomplete"] and run["status"] in ("incomplete", "violations")
    page = store.read_bytes(f"{prefix}/report.html").decode()
    assert "profile_partition FAILED" in page and "did not complete: drift" in page
    failures = [e for e in read_events(store, "churn") if e["check"] == "stage_failure"]
    assert [e["subject"] for e in failures] == ["profile_partition"]
    assert "could not profile_partition" not in failures[0]["text"]  # a sentence, not a task id
    # fixed, re-run: green, and the failure resolves
    profile.write_bytes(kept)
    dr = run_interval(dag, t, cfg.interval_end(t))
    assert str(dr.state).endswith("success")
    assert store.read_json(f"{prefix}/run.json")["incomplete"] == []
    # the re-run took the interval's lease over from the first run (released by its check_run)
    # and released it in turn
    lease = store.read_json(f"{prefix}/lease.json")
    assert lease["holder"] == dr.run_id and lease["released_at"] and lease["took_over"]["why"].startswith("released")
    events = [e for e in read_events(store, "churn") if e["check"] == "stage_failure"]
    assert sorted(e["event"] for e in events) == ["firing", "resolved"]
