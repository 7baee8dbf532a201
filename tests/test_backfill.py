"""Backfills as an operator makes them: Airflow's real scheduler, dag-processor, triggerer and API
server (LocalExecutor, SQLite) on a fresh metadata DB, and backfills created through the REST
API with exactly the body the UI's Backfill dialog sends by default ("Missing Runs", one run at
a time). A webhook route on loopback receives the alerts.

- The dialog's defaults are accepted (no task depends on its past) and every run succeeds, with
  logical date = interval start and its artifacts, summary and report link in the task log.
- A second backfill re-runs every interval of an overlapping range backwards ("All Runs", the
  latest first): the re-run intervals reproduce their verdicts byte for byte, and the intervals
  evaluated out of order end with exactly the alert records an in-order evaluation gives.
- The README's `airflow backfill create` command, with its defaults, runs too.
- No alert message reaches the webhook twice.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from driftline.store import Store

PROJECT = Path(__file__).resolve().parent.parent
DAG_ID = "driftline_monitor_churn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _monitors(tmp_path: Path) -> Path:
    """The demo model with a webhook route, and without retraining (not what this tests)."""
    from test_e2e_act import _monitors as with_webhook

    folder = with_webhook(tmp_path)
    text = (folder / "churn.yaml").read_text()
    if "retraining:" in text:
        text = text.replace("retraining:\n  enabled: true", "retraining:\n  enabled: false")
    (folder / "churn.yaml").write_text(text)
    return folder


def _state(store: Store, start: datetime, group: str) -> dict:
    from driftline.stages.alerts import read_record

    rec = read_record(store, "churn", start, group) or {}
    return {f"{a['check']}|{a['subject']}": (a["status"], a["incident"]) for a in rec.get("alerts", [])}


@pytest.mark.e2e
def test_ui_backfill_defaults_run_on_the_scheduler_and_reproduce(labelled_demo_week, tmp_path):
    from driftline.demo import demo_interval_starts
    from driftline.stages.alerts import evaluate_in_order, read_events
    from driftline_airflow.local_airflow import LocalAirflow
    from test_e2e_act import Receiver

    week = labelled_demo_week
    starts = demo_interval_starts(week["manifest"])
    store_dir = tmp_path / "store"
    shutil.copytree(week["store"], store_dir)
    store = Store(f"file://{store_dir}")
    receiver = Receiver()
    home = tmp_path / "airflow"
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"ops": "backfill-pw"}))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the dialog's "unpause" does it
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "driftline-backfill-test",
        "AIRFLOW_CONN_ALERTS_HOOK": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": receiver.port,
                                                "schema": "http"}),
        "DRIFTLINE_MONITORS_DIR": str(_monitors(tmp_path)),
        "DRIFTLINE_DEMO_ROOT": week["demo"],
        "DRIFTLINE_STORE_URL": store.uri("").rstrip("/"),
    }
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, **env})
    day = [t.strftime("%Y-%m-%dT%H:%M") for t in starts]
    with LocalAirflow(home, port=_free_port(), env=env, user="ops", log_dir=tmp_path / "components") as airflow:
        airflow.wait_for_dag(DAG_ID)
        airflow.unpause(DAG_ID)  # as the dialog does with its "unpause" box, checked by default
        # docker-compose.yaml's healthchecks, run against these live components
        from test_compose import healthcheck_commands

        for service, command in healthcheck_commands().items():
            check = subprocess.run(["bash", "-c", command.replace("airflow ", f"{sys.executable} -m airflow ", 1)],
                                   capture_output=True, text=True, env={**os.environ, **env})
            assert check.returncode == 0, (service, check.stdout[-500:], check.stderr[-500:])

        # 1. the dialog's defaults over days 0-2: accepted, run in order, all green
        first = airflow.create_backfill(DAG_ID, day[0], day[2])
        assert (first["reprocess_behavior"], first["max_active_runs"]) == ("none", 1)
        airflow.wait_backfill(first["id"], timeout=900)
        runs = airflow.dag_runs(DAG_ID, run_type="backfill")
        assert [(r["logical_date"][:10], r["data_interval_start"][:10], r["state"]) for r in runs] == [
            (t.date().isoformat(), t.date().isoformat(), "success") for t in starts[:3]]
        assert all(r["conf"] == {"baseline": ""} for r in runs)
        digests = {}
        for t in starts[:3]:
            run = store.read_json(f"{Store.run_prefix('churn', t)}/run.json")
            assert run["baseline"] == "v1" and run["baseline_pin"]["version"] == "v1"
            assert store.exists(f"{Store.run_prefix('churn', t)}/report.html")
            digests[t] = run["digest"]
        # the task logs, read as the UI's log view reads them: the summary block, the next step,
        # and a link to the run's report on the driftline page
        key = starts[0].strftime("%Y-%m-%dT%H%MZ")
        page = f"{airflow.env['AIRFLOW__API__BASE_URL']}/driftline/models/churn/runs/{key}/report.html"
        for task_id in ("ingest", "data_quality", "drift", "model_quality", "alert_data", "record_run", "report"):
            log = airflow.task_log(DAG_ID, runs[0]["dag_run_id"], task_id)
            assert f"report:    {page}" in log and "next:      " in log, (task_id, log[-1500:])
        log = airflow.task_log(DAG_ID, runs[0]["dag_run_id"], "record_run")
        assert f"run churn {key}" in log and "artifacts:" in log
        assert "Skipping registering function" not in airflow.task_log(DAG_ID, runs[0]["dag_run_id"], "data_quality")

        # 2. "All Runs" over days 1-4, the latest first: days 1, 2 are re-runs, 3 and 4 are
        # evaluated before the days they follow
        second = airflow.create_backfill(DAG_ID, day[1], day[4], reprocess_behavior="completed", run_backwards=True)
        airflow.wait_backfill(second["id"], timeout=900)
        runs = {r["data_interval_start"][:10]: r for r in airflow.dag_runs(DAG_ID, run_type="backfill")}
        assert {d: r["state"] for d, r in runs.items()} == {t.date().isoformat(): "success" for t in starts[:5]}
        # exactly the intervals asked for: day 0 was left alone (its run and its one execution)
        assert runs[starts[0].date().isoformat()]["end_date"] < second["created_at"]
        assert len(store.listdir(f"{Store.run_prefix('churn', starts[0])}/executions")) == 1
        order = sorted(starts[1:5], key=lambda t: runs[t.date().isoformat()]["start_date"])
        assert order == sorted(starts[1:5], reverse=True)  # it really ran backwards
        for t in starts[1:3]:  # re-run: the same verdict, to the byte
            assert store.read_json(f"{Store.run_prefix('churn', t)}/run.json")["digest"] == digests[t]
            executions = store.listdir(f"{Store.run_prefix('churn', t)}/executions")
            assert len(executions) == 2

        # 3. the README's command line, with its defaults
        # on SQLite the command can meet the scheduler's write lock ("database is locked", as the
        # API's 503 says: SQLite takes one writer): an operator runs it again, as this does
        made = []
        for _ in range(5):
            cli = subprocess.run([sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", DAG_ID,
                                  "--from-date", day[5], "--to-date", day[5]], capture_output=True, text=True,
                                 env={**os.environ, **env})
            made = [b for b in airflow.api("GET", "backfills", query={"dag_id": DAG_ID})["backfills"]
                    if b["id"] not in (first["id"], second["id"])]
            if made or "database is locked" not in cli.stdout + cli.stderr:
                break
        assert cli.returncode == 0 or made, cli.stdout[-2000:] + cli.stderr[-2000:]
        (made,) = made
        airflow.wait_backfill(made["id"], timeout=600)
        runs = {r["data_interval_start"][:10]: r for r in airflow.dag_runs(DAG_ID, run_type="backfill")}
        assert runs[starts[5].date().isoformat()]["state"] == "success"

    # the alert records equal those of an in-order evaluation of the same findings
    reference = Store(f"file://{tmp_path}/in-order")
    shutil.copytree(store_dir, tmp_path / "in-order")
    for t in starts[:6]:
        for g in ("data", "quality"):
            Path(tmp_path / "in-order" / Store.run_prefix("churn", t) / f"alerts.{g}.json").unlink()
    for t in starts[:6]:
        for g in ("data", "quality"):
            evaluate_in_order(week["cfg"], reference, [t], g)
    for t in starts[:6]:
        for g in ("data", "quality"):
            assert _state(store, t, g) == _state(reference, t, g), (t, g)
    # some alert fired (the drift days), and none reached the webhook twice
    ids = receiver.ids()
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # each message links to its interval's report on the driftline page
    for body in receiver.bodies:
        assert body["links"]["report"].endswith(f"/driftline/models/churn/runs/{body['interval']}/report.html")
    sent = {e["id"] for e in read_events(store, "churn")
            if e["severity"] in ("warning", "critical") or e["event"] in ("resolved", "rejudged")}
    assert set(ids) <= sent
