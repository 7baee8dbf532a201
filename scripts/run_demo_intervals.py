"""Run the demo model's monitoring DAG over every demo interval, as a user would: Airflow's
scheduler runs a backfill of the demo's days (see scripts/quickstart.sh).

The components are Airflow's own (api-server, scheduler, dag-processor, triggerer), started
on the project's AIRFLOW_HOME for the length of this script -- or the ones already running
there (`airflow standalone`) -- and the backfill is created through the REST API with the body
the UI's Backfill dialog sends. The runs are then ordinary backfill runs: logical date = the
interval's start, run ids `backfill__...`, task logs in Airflow's log view. The retraining
the runs ask for (an Asset event) is run by the scheduler too.
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from driftline.config import default_demo_root, default_store_url
from driftline.store import Store
from driftline_airflow.local_airflow import AirflowError, LocalAirflow

DAG_ID = "driftline_monitor_churn"
#: The DAGs the demo needs active: monitoring, the answers to its alerts, its retraining.
DEMO_DAGS = (DAG_ID, "driftline_feedback_churn", "driftline_retrain_churn", "driftline_baseline")


def main() -> int:
    demo_root = default_demo_root()
    manifest = json.loads(Store(demo_root).read_bytes("manifest.json"))
    store = Store(default_store_url())
    home = Path(os.environ.get("AIRFLOW_HOME", "airflow_home"))
    port = int(os.environ.get("DRIFTLINE_AIRFLOW_PORT", "8080"))
    starts = [datetime.fromisoformat(iso) for iso in manifest["interval_starts"]]
    airflow = LocalAirflow(home, port=port)
    t0 = time.monotonic()
    try:
        airflow.start()
    except AirflowError as exc:
        print(f"driftline quickstart: {exc}", file=sys.stderr)
        return 2
    print(("  started Airflow (api-server, scheduler, dag-processor, triggerer) on port "
           f"{port}; component logs in {airflow.log_dir}") if airflow.started else
          f"  using the Airflow already running on port {port}")
    try:
        return _run(airflow, store, starts, t0)
    finally:
        if airflow.started:
            airflow.stop()
            print("  stopped the Airflow components this script started")


def _run(airflow: LocalAirflow, store: Store, starts: list[datetime], t0: float) -> int:
    for dag_id in DEMO_DAGS:
        dag = airflow.wait_for_dag(dag_id)
        if dag.get("is_paused"):
            airflow.unpause(dag_id)
            print(f"  activated {dag_id} (it was paused)")
    runs = {r["logical_date"][:10]: r for r in airflow.dag_runs(DAG_ID)}
    missing = [t for t in starts if t.date().isoformat() not in runs]
    # the UI dialog's defaults ("Missing Runs"); when every day has run, "All Runs" re-runs them
    # and shows that a re-run reproduces each verdict (the same digest)
    behaviour = "none" if missing else "completed"
    before = {t: _digest(store, t) for t in starts}
    first, last = starts[0].strftime("%Y-%m-%dT%H:%M"), starts[-1].strftime("%Y-%m-%dT%H:%M")
    backfill = airflow.create_backfill(DAG_ID, first, last, reprocess_behavior=behaviour)
    print(f"  backfill {backfill['id']} of {DAG_ID}: {first} .. {last} "
          f"({'missing runs' if behaviour == 'none' else 'every run again'}, one run at a time)")
    airflow.wait_backfill(backfill["id"], progress=lambda run: print(
        f"    {run['data_interval_start'][:10]}  {run['state']:<8} {run['dag_run_id']}", flush=True))
    # a run that asked for retraining updated an Asset: the scheduler runs the retraining DAG.
    # (The monitoring DAG's own schedule runs its latest interval meanwhile, catchup being off:
    # that run has no demo data and is not waited for.)
    airflow.wait_idle(["driftline_retrain_churn"], settle=20)
    print(f"  done in {time.monotonic() - t0:.0f} s")
    report(airflow, store, starts, before)
    retrain_report(airflow, store)
    home = airflow.home
    print(f"\nartifacts: {store.uri('runs', 'churn')}/<interval>/  (batch.parquet, quarantine.jsonl, "
          f"report.html, constraint_violations.json, data_docs/index.html, drift.json, model_quality.json, run.json)")
    print(f"baselines: {store.uri('baselines', 'churn')}   metrics history: {store.uri('metrics', 'churn', 'history')}")
    print(f"task logs: the Airflow UI (a run -> a task -> Logs), stored under {home / 'logs'}/dag_id={DAG_ID}/")
    from driftline.render.history import load_history, render_history

    history = store.write_text("metrics/churn/history.html", render_history(load_history(store, "churn")))
    print(f"history view: {history}")
    print('the Airflow UI and the driftline page (reports, history, answering alerts): source scripts/env.sh && '
          'export PATH="$VENV/bin:$PATH" && airflow standalone, then http://localhost:8080/plugin/driftline')
    states = {r["data_interval_start"][:10]: r["state"] for r in airflow.dag_runs(DAG_ID, run_type="backfill")}
    return 0 if all(states.get(t.date().isoformat()) == "success" for t in starts) else 1


def _digest(store: Store, start: datetime) -> str | None:
    rel = f"{Store.run_prefix('churn', start)}/run.json"
    try:
        return store.read_json(rel).get("digest") if store.exists(rel) else None
    except ValueError:
        return None


def report(airflow: LocalAirflow, store: Store, starts: list[datetime], before: dict) -> None:
    runs = {r["data_interval_start"][:10]: r for r in airflow.dag_runs(DAG_ID, run_type="backfill")}
    rows = []
    for start in starts:
        day = start.date().isoformat()
        dr = runs.get(day, {})
        key = Store.run_prefix("churn", start)
        run = store.read_json(f"{key}/run.json") if store.exists(f"{key}/run.json") else {}
        mq_rel = f"{key}/model_quality.json"
        mq = store.read_json(mq_rel)["overall"] if store.exists(mq_rel) else None
        secs = _seconds(dr)
        again = ("" if before.get(start) is None else
                 "reproduced" if before[start] == run.get("digest") else "CHANGED (see executions/)")
        rows.append((day, dr.get("state", "?"), secs, run.get("status", "?"), run.get("violations", "?"),
                     ", ".join(run.get("violation_checks", [])) or "-", run.get("drift") or "-", mq, again))
    print("\ninterval     dag run   took   verdict      violations  checks")
    for r in rows:
        print(f"{r[0]:<12} {str(r[1]):<9} {r[2]:>4}   {r[3]:<12} {r[4]!s:<11} {r[5]}" + (f"   [{r[8]}]" if r[8] else ""))
    print("\ninterval     drift")
    for r in rows:
        print(f"{r[0]:<12} {r[6]}")
    print("\ninterval     labels        accuracy realized  estimated [90% band]     ROC AUC realized  estimated")
    for r in rows:
        g = r[7]
        if not g:
            print(f"{r[0]:<12} -")
            continue
        real = g["realized"].get("metrics", {}) if g["realized"].get("status") == "ok" else {}
        est = g["estimated"].get("metrics", {}) if g["estimated"].get("status") == "ok" else {}

        def fmt(v):
            return "-" if v is None else f"{v:.3f}"
        acc, auc = est.get("accuracy", {}), est.get("roc_auc", {})
        band = f"{fmt(acc.get('value'))} [{fmt(acc.get('lower'))}-{fmt(acc.get('upper'))}]" if acc else "-"
        print(f"{r[0]:<12} {g['labelled']:>5}/{g['predicted']:<6} {fmt(real.get('accuracy')):>17}  {band:<24} "
              f"{fmt(real.get('roc_auc')):>16}  {fmt(auc.get('value'))}")
    from driftline.stages.alerts import read_events

    events = read_events(store, "churn")
    print("\ninterval     alert incidents opened                          resolved   (every alert: the task logs)")
    for r in rows:
        day = [e for e in events if e["interval"].startswith(r[0])]
        print(f"{r[0]:<12} {_by_check(day, 'firing'):<47} {_by_check(day, 'resolved')}")


def _seconds(run: dict) -> str:
    try:
        took = datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
        return f"{took.total_seconds():.0f}s"
    except (KeyError, TypeError, ValueError):
        return "-"


def _by_check(events: list[dict], kind: str) -> str:
    """'drift 5, model_quality 1' for the events of one kind."""
    counts: dict[str, int] = {}
    for e in events:
        if e["event"] == kind:
            name = e["check"].removesuffix("_check").replace("baseline_drift", "drift")
            counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def retrain_report(airflow: LocalAirflow, store: Store) -> None:
    """What the retraining the monitoring runs asked for did (the scheduler ran it on the Asset)."""
    from driftline.stages.retrain_policy import list_requests
    from driftline.store import registry

    requests = sorted((r for r in list_requests(store, "churn") if r.get("emitted")), key=lambda r: r["interval"])
    if not requests:
        print("\nretraining: no request")
        return
    print(f"\nretraining requested for {', '.join(r['interval'] for r in requests)}: {requests[-1]['why'][:150]}")
    for run in airflow.dag_runs("driftline_retrain_churn"):
        try:
            decision = airflow.api("GET", f"dags/driftline_retrain_churn/dagRuns/{run['dag_run_id']}/taskInstances/"
                                          f"evaluate/xcomEntries/return_value").get("value") or {}
        except AirflowError:
            decision = {}
        if isinstance(decision, str):
            try:
                decision = json.loads(decision)
            except ValueError:
                decision = {"reason": decision}
        print(f"retraining DAG run {run['dag_run_id']}: {run['state']}; {decision.get('reason', '?')}")
    champ = registry.champion(store, "churn") or {}
    print(f"champion now {champ.get('version')} with baseline {champ.get('baseline')} (intervals not yet evaluated "
          f"use it; each evaluated one keeps the baseline it was judged against; "
          f"`driftline rollback --model churn --to v1` goes back)")


if __name__ == "__main__":
    sys.exit(main())
