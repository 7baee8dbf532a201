"""Run the demo model's monitoring DAG over every demo interval (see scripts/quickstart.sh)."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime

from driftline.cli import project_dir
from driftline_airflow.runtime import load_configs
from driftline.store import Store
from driftline_airflow.local_runs import get_dag, run_interval

DAG_ID = "driftline_monitor_churn"


def main() -> int:
    demo_root = os.environ.get("DRIFTLINE_DEMO_ROOT") or f"file://{project_dir() / 'data' / 'demo'}"
    manifest = json.loads(Store(demo_root).read_bytes("manifest.json"))
    store = Store(os.environ.get("DRIFTLINE_STORE_URL") or f"file://{project_dir() / 'data' / 'store'}")
    dag = get_dag(DAG_ID)
    cfg = load_configs().models["churn"]
    rows = []
    for iso in manifest["interval_starts"]:
        start = datetime.fromisoformat(iso)
        dr = run_interval(dag, start, cfg.interval_end(start))
        key = Store.run_prefix("churn", start)
        run = store.read_json(f"{key}/run.json") if store.exists(f"{key}/run.json") else {}
        rows.append((iso[:10], dr.state, run.get("status", "?"), run.get("violations", "?"),
                     ", ".join(run.get("violation_checks", [])) or "-"))
    print("\ninterval     dag run   verdict      violations  checks")
    for r in rows:
        print(f"{r[0]:<12} {str(r[1]):<9} {r[2]:<12} {r[3]!s:<11} {r[4]}")
    print(f"\nartifacts: {store.uri('runs', 'churn')}/<interval>/  (batch.parquet, quarantine.jsonl, "
          f"constraint_violations.json, data_docs/index.html, run.json)")
    print(f"baselines: {store.uri('baselines', 'churn')}   metrics history: {store.uri('metrics', 'churn', 'history')}")
    return 0 if all(str(r[1]).endswith("success") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
