"""Run the demo model's monitoring DAG over every demo interval (see scripts/quickstart.sh)."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path

from driftline.config import default_demo_root, default_store_url
from driftline_airflow.runtime import load_configs
from driftline.store import Store
from driftline_airflow.local_runs import get_dag, run_interval

DAG_ID = "driftline_monitor_churn"


@contextlib.contextmanager
def output_to(path: Path):
    """Send everything written to stdout/stderr (Airflow's task logs included, whatever
    handler holds them) to path, at the file-descriptor level."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def main() -> int:
    demo_root = default_demo_root()
    manifest = json.loads(Store(demo_root).read_bytes("manifest.json"))
    store = Store(default_store_url())
    with output_to(Path(os.environ.get("AIRFLOW_HOME", ".")) / "logs" / "demo_runs.log"):
        dag = get_dag(DAG_ID)
    cfg = load_configs().models["churn"]
    rows = []
    log_path = Path(os.environ.get("AIRFLOW_HOME", ".")) / "logs" / "demo_runs.log"
    for iso in manifest["interval_starts"]:
        start = datetime.fromisoformat(iso)
        print(f"  {iso[:10]} ...", end=" ", flush=True)
        with output_to(log_path):
            dr = run_interval(dag, start, cfg.interval_end(start))
        print(dr.state, flush=True)
        key = Store.run_prefix("churn", start)
        run = store.read_json(f"{key}/run.json") if store.exists(f"{key}/run.json") else {}
        mq_rel = f"{key}/model_quality.json"
        mq = store.read_json(mq_rel)["overall"] if store.exists(mq_rel) else None
        rows.append((iso[:10], dr.state, run.get("status", "?"), run.get("violations", "?"),
                     ", ".join(run.get("violation_checks", [])) or "-", run.get("drift") or "-", mq))
    print("\ninterval     dag run   verdict      violations  checks")
    for r in rows:
        print(f"{r[0]:<12} {str(r[1]):<9} {r[2]:<12} {r[3]!s:<11} {r[4]}")
    print("\ninterval     drift")
    for r in rows:
        print(f"{r[0]:<12} {r[5]}")
    print("\ninterval     labels        accuracy realized  estimated [90% band]     ROC AUC realized  estimated")
    for r in rows:
        g = r[6]
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
    from driftline.alerts import read_events

    events = read_events(store, "churn")
    print("\ninterval     alert incidents opened                          resolved   (every alert: the task logs)")
    for r in rows:
        day = [e for e in events if e["interval"].startswith(r[0])]
        print(f"{r[0]:<12} {_by_check(day, 'firing'):<47} {_by_check(day, 'resolved')}")
    retrain_demo(store, log_path)
    print(f"\nartifacts: {store.uri('runs', 'churn')}/<interval>/  (batch.parquet, quarantine.jsonl, "
          f"report.html, constraint_violations.json, data_docs/index.html, drift.json, model_quality.json, run.json)")
    print(f"baselines: {store.uri('baselines', 'churn')}   metrics history: {store.uri('metrics', 'churn', 'history')}")
    print(f"task logs (with each task's summary block): {log_path}")
    from driftline.history import load_history, render_history

    history = store.write_text("metrics/churn/history.html", render_history(load_history(store, "churn")))
    print(f"history view: {history}")
    print('the driftline page (reports, history, answering alerts): source scripts/env.sh && '
          'export PATH="$VENV/bin:$PATH" && airflow standalone, then http://localhost:8080/plugin/driftline')
    return 0 if all(str(r[1]).endswith("success") for r in rows) else 1


def _by_check(events: list[dict], kind: str) -> str:
    """'drift 5, model_quality 1' for the events of one kind."""
    counts: dict[str, int] = {}
    for e in events:
        if e["event"] == kind:
            name = e["check"].removesuffix("_check").replace("baseline_drift", "drift")
            counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def retrain_demo(store: Store, log_path: Path) -> None:
    """Run the retraining the monitoring runs asked for (the scheduler would, on the Asset)."""
    from driftline import registry
    from driftline.retrain_policy import list_requests

    requests = sorted((r for r in list_requests(store, "churn") if r.get("emitted")), key=lambda r: r["interval"])
    if not requests:
        print("\nretraining: no request")
        return
    req = requests[-1]
    print(f"\nretraining requested for {', '.join(r['interval'] for r in requests)}: {req['why'][:150]}")
    champ = registry.champion(store, "churn")
    if champ and champ["version"] != "v1":
        print(f"retraining: champion is already {champ['version']} (baseline {champ['baseline']}); "
              f"`driftline models --model churn` lists the versions")
        return
    with output_to(log_path):
        dag = get_dag("driftline_retrain_churn")
        dr = dag.test(run_conf={"end": req["end"], "window": f"{req['window_days']:g}d", "dry_run": False})
    decision = dr.get_task_instance("evaluate").xcom_pull(task_ids="evaluate") or {}
    champ = registry.champion(store, "churn") or {}
    print(f"retraining DAG: {dr.state}; {decision.get('reason', '?')}")
    print(f"champion now {champ.get('version')} with baseline {champ.get('baseline')} "
          f"(later runs use it; `driftline rollback --model churn --to v1` goes back)")


if __name__ == "__main__":
    sys.exit(main())
