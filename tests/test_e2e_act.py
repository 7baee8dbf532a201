"""End to end, acting on what monitoring finds: the demo through the real monitoring DAG with a
webhook route to a receiver on loopback, then the retraining the monitoring runs asked for.

- Every alert message reaches the webhook exactly once: across a task retry (the receiver
  refuses one request), a re-run and a backfill of intervals already sent; an incident that
  ends sends one "resolved".
- The drift days' model-quality alerts make the monitoring DAG update the retraining Asset;
  Airflow queues a run of ``driftline_retrain_churn`` for it; the retraining DAG trains a
  challenger: on pre-drift data it does not beat the champion and nothing is promoted; a dry
  run promotes nothing; on the post-drift window of the Asset event it wins and is promoted,
  and a later monitoring run uses the new baseline.
"""
from __future__ import annotations

import json
import shutil
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from driftline.config import load_all
from driftline.demo import generate_demo
from driftline.stages.alerts import read_events
from driftline.stages.baseline import create_baseline
from driftline.store import Store

PROJECT = Path(__file__).resolve().parent.parent


class Receiver:
    """A webhook receiver on loopback that records every JSON body; refuses request #n once."""

    def __init__(self, refuse_request: int | None = None):
        self.bodies: list[dict] = []
        self.refused = 0
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.seen += 1
                if outer.seen == refuse_request:
                    outer.refused += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                assert self.headers["Idempotency-Key"] == body["id"]
                outer.bodies.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def ids(self) -> list[str]:
        return [b["id"] for b in self.bodies]


def _monitors(tmp_path: Path) -> Path:
    folder = tmp_path / "monitors"
    folder.mkdir()
    text = (PROJECT / "include/monitors/churn.yaml").read_text()
    text = text.replace("alerts:\n  - {type: log, min_severity: info}",
                        "alerts:\n  - {type: log, min_severity: info}\n"
                        "  - {type: webhook, conn_id: alerts_hook, min_severity: warning, target: /driftline}")
    assert "alerts_hook" in text
    (folder / "churn.yaml").write_text(text)
    return folder


def _run(dag, manifest, d: int):
    from driftline_airflow.local_runs import run_interval

    start = datetime.fromisoformat(manifest["interval_starts"][d])
    dr = run_interval(dag, start, start + timedelta(days=1))
    assert str(dr.state).endswith("success"), f"day {d}: {dr.state}"
    return dr


def _unpause(dag_id: str) -> None:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as s:
        assert s.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": False}) == 1


def _clear_queue(dag_id: str) -> None:
    """Runs queued by other tests' events (no scheduler consumes them here)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as s:
        s.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).delete()


def _retries(dag_id: str, task_ids: tuple[str, ...]) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        return s.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.task_id.in_(task_ids),
                                            TaskInstance.try_number > 1).count()


@pytest.mark.e2e
def test_alerts_once_then_retraining_through_the_asset(tmp_path, monkeypatch, airflow_db):
    from datetime import timezone

    from driftline.store import registry
    from driftline_airflow.local_runs import get_dag

    began = datetime.now(timezone.utc)  # the metadata DB is shared by the session's tests
    receiver = Receiver(refuse_request=2)
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_HOOK", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "schema": "http"}))
    monkeypatch.setenv("DRIFTLINE_MONITORS_DIR", str(_monitors(tmp_path)))
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", f"file://{tmp_path}/demo")
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{tmp_path}/store")
    manifest = generate_demo(f"file://{tmp_path}/demo", rows_per_hour=40, training_rows=6000)
    cfg = load_all(tmp_path / "monitors").models["churn"]
    store = Store(f"file://{tmp_path}/store")
    create_baseline(cfg, store)

    dag = get_dag("driftline_monitor_churn")
    for t in dag.tasks:
        t.retry_delay = timedelta(0)
    for d in range(7):
        _run(dag, manifest, d)
        if d == 0:  # new DAGs start paused; a user switches the retraining DAG on
            _unpause("driftline_retrain_churn")
            _clear_queue("driftline_retrain_churn")

    # a route refused one request: the alert task failed and its retry sent only what was missing
    assert receiver.refused == 1 and _retries(dag.dag_id, ("alert_data", "alert_quality")) >= 1
    ids = receiver.ids()
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    events = read_events(store, "churn")
    wanted = {e["id"] for e in events if e["severity"] in ("warning", "critical") or e["event"] == "resolved"}
    assert set(ids) == wanted
    kinds = {(b["check"], b["event"]) for b in receiver.bodies}
    # the drift (2 of 3 days), the data-quality incident of day 5 and its end on day 6, the
    # model-quality drop once the labels of the drift days landed
    assert {("baseline_drift_check", "firing"), ("range_check", "firing"), ("completeness_check", "firing"),
            ("completeness_check", "resolved"), ("model_quality_check", "firing")} <= kinds
    drift = next(b for b in receiver.bodies if b["check"] == "baseline_drift_check"
                 and b["subject"] == "monthly_charges")
    assert drift["interval"] == manifest["interval_starts"][4][:10] + "T0000Z"  # day 3 pending, day 4 fires
    assert drift["text"].startswith("monthly_charges: ks p-value ") and "against baseline v1" in drift["text"]
    assert "(failed in 2 of the last 3 intervals)" in drift["text"]
    resolved = [b for b in receiver.bodies if b["event"] == "resolved"]
    # a resolution's id names the interval it resolved in (a withdrawn one is not the true one)
    assert all(b["id"].endswith(f"|resolved|{b['interval']}") for b in resolved)
    assert len({b["incident_key"] for b in resolved}) == len(resolved)

    # a re-run and a backfill of intervals already sent: nothing goes out again
    before = list(ids)
    for d in (4, 5, 6):
        _run(dag, manifest, d)
    assert receiver.ids() == before

    # the policy held: the monitoring DAG updated the Asset, and Airflow queued the retraining DAG
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as s:
        asset = s.query(AssetModel).filter(AssetModel.uri == "driftline://churn/retraining").one()
        emitted = [e.extra for e in s.query(AssetEvent).filter(AssetEvent.asset_id == asset.id,
                                                                AssetEvent.timestamp >= began)
                   .order_by(AssetEvent.timestamp)]
        queued = s.query(AssetDagRunQueue).filter(AssetDagRunQueue.asset_id == asset.id,
                                                  AssetDagRunQueue.target_dag_id == "driftline_retrain_churn",
                                                  AssetDagRunQueue.created_at >= began).count()
    # the first drift day, then again once the 3-day cooldown was over; the re-runs asked for nothing
    assert [e["interval"] for e in emitted] == [manifest["interval_starts"][d][:10] + "T0000Z" for d in (3, 6)]
    request = emitted[-1]
    assert request["model"] == "churn" and "model quality" in request["why"] and request["labelled"] >= 500
    assert queued == 1

    retrain = get_dag("driftline_retrain_churn")
    # pre-drift data: the challenger does not beat the champion by the margin -> not promoted
    first = manifest["interval_starts"][3]
    dr = retrain.test(run_conf={"end": first, "window": "3d"})
    assert str(dr.state).endswith("success")
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["promote"].endswith("skipped") and states["not_promoted"].endswith("success")
    assert registry.champion(store, "churn")["version"] == "v1"
    # the post-drift window, as a dry run: the challenger wins, nothing is promoted
    dr = retrain.test(run_conf={"end": request["end"], "window": "7d", "dry_run": True})
    decision = dr.get_task_instance("evaluate").xcom_pull(task_ids="evaluate")
    assert decision["promote"] and registry.champion(store, "churn")["version"] == "v1"
    # the Asset event's request: promoted, with a new model version and baseline
    dr = retrain.test(run_conf={"end": request["end"], "window": f"{request['window_days']:g}d", "dry_run": False})
    assert str(dr.state).endswith("success")
    champ = registry.champion(store, "churn")
    assert champ["version"] == "v2" and champ["baseline"] == "v2"
    assert [m["version"] for m in registry.list_model_versions(store, "churn")] == ["v1", "v2"]
    with create_session() as s:
        target = s.query(AssetModel).filter(AssetModel.uri == "driftline://churn/promoted").one()
        promoted = s.query(AssetEvent).filter(AssetEvent.asset_id == target.id, AssetEvent.timestamp >= began).all()
        assert [e.extra["version"] for e in promoted] == ["v2"]

    # a re-run of an interval already judged keeps the baseline it was judged against (v1): the
    # same verdict, to the byte, whatever was promoted since
    prefix = Store.run_prefix("churn", datetime.fromisoformat(manifest["interval_starts"][6]))
    before = store.read_json(f"{prefix}/drift.json")["features"]["monthly_charges"]["statistic"]
    judged = store.read_json(f"{prefix}/run.json")["digest"]
    _run(dag, manifest, 6)
    assert store.read_json(f"{prefix}/run.json")["digest"] == judged
    # asked for deliberately (the Param), the new baseline judges it; the pin records who asked.
    # It holds the post-drift data (mixed with the training data): the day drifts less from it
    start = datetime.fromisoformat(manifest["interval_starts"][6])
    dr = dag.test(logical_date=start + timedelta(days=1), run_conf={"baseline": "v2"})
    assert str(dr.state).endswith("success")
    run = store.read_json(f"{prefix}/run.json")
    assert run["baseline"] == "v2" and run["baseline_pin"]["changes"][-1]["from"] == "v1"
    assert "Param 'baseline'" in run["baseline_pin"]["changes"][-1]["by"]
    drift = store.read_json(f"{prefix}/drift.json")
    assert drift["baseline"] == "v2"
    assert drift["features"]["monthly_charges"]["statistic"] < 0.9 * before, drift["summary"]
    shutil.rmtree(tmp_path / "demo", ignore_errors=True)
