#!/usr/bin/env bash
# Set up driftline and run its main job on the embedded default (local store, SQLite Airflow):
# virtualenv + install, project-local AIRFLOW_HOME, the demo scenario, its baseline, and the
# monitoring DAG over every demo interval: Airflow's scheduler runs a backfill of the demo's
# days (created through the REST API as the UI's Backfill dialog does), then the retraining
# they ask for; then it prints the verdicts and where the artifacts are.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROJECT_DIR"
echo "==> installing into $VENV (first time: a few minutes)"
ensure_venv requirements.txt
export PATH="$VENV/bin:$PATH"
echo "==> Airflow metadata DB (SQLite) in $AIRFLOW_HOME"
airflow db migrate >/dev/null
echo "==> demo scenario"
driftline demo
echo "==> baseline"
driftline baseline --model churn --if-missing
echo "==> monitoring DAG over every demo interval (a backfill, run by Airflow's scheduler)"
python scripts/run_demo_intervals.py
