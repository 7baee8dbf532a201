"""DAG integrity: every DAG file imports cleanly and cheaply; a broken model file shows as an
import error naming it while the other models' DAGs still load."""
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
ALLOWED_TAGS = {"driftline", "retraining", "monitoring", "baseline", "demo", "classification", "regression"}


def _dagbag(monitors_dir: Path | None = None) -> dict:
    """Load the DAG folder in a fresh interpreter, as the dag-processor does, and report."""
    code = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in ("great_expectations", "sklearn", "scipy") if m in sys.modules)
print("RESULT" + json.dumps({"dag_ids": sorted(bag.dag_ids), "errors": bag.import_errors, "heavy": heavy,
      "tags": {d: sorted(bag.get_dag(d).tags) for d in bag.dag_ids},
      "docs": {d: bool(bag.get_dag(d).doc_md) for d in bag.dag_ids},
      "seconds": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats}}))
"""
    env = os.environ.copy()
    if monitors_dir:
        env["DRIFTLINE_MONITORS_DIR"] = str(monitors_dir)
    out = subprocess.run([sys.executable, "-c", code, str(PROJECT / "dags")], capture_output=True, text=True, env=env)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, out.stderr[-3000:]
    return json.loads(line[len("RESULT"):])


def test_dag_files_import_without_errors_or_heavy_imports(airflow_db):
    bag = _dagbag()
    assert bag["errors"] == {}
    assert {"driftline_monitor_churn", "driftline_baseline"} <= set(bag["dag_ids"])
    # parsing happens every 30 s: GX (~6 s to import), sklearn and scipy stay out of it
    assert bag["heavy"] == []
    for dag_id, tags in bag["tags"].items():
        assert set(tags) <= ALLOWED_TAGS, f"{dag_id}: unknown tags {set(tags) - ALLOWED_TAGS}"
        assert bag["docs"][dag_id], f"{dag_id} has no doc_md"


def test_broken_model_file_is_an_import_error_naming_it(tmp_path, airflow_db):
    shutil.copy(PROJECT / "include/monitors/churn.yaml", tmp_path / "churn.yaml")
    text = (PROJECT / "include/monitors/churn.yaml").read_text()
    (tmp_path / "fraud.yaml").write_text(text.replace("name: churn", "name: fraud")
                                         .replace("type: numeric,     description: 'current", "type: flot,     description: 'current"))
    bag = _dagbag(tmp_path)
    assert "driftline_monitor_churn" in bag["dag_ids"] and "driftline_monitor_fraud" not in bag["dag_ids"]
    (path, msg), = bag["errors"].items()
    assert path.endswith("driftline_monitoring.py")
    assert f"{tmp_path / 'fraud.yaml'}: features[1].type: 'flot' is not one of numeric" in msg


def test_alias_bomb_model_file_is_refused_without_hiding_the_others(tmp_path, airflow_db):
    """A 600-byte alias bomb used to keep every DAG file busy past its import timeout (every
    driftline DAG gone, the timeout naming no model file); now it is refused in milliseconds."""
    shutil.copy(PROJECT / "include/monitors/churn.yaml", tmp_path / "churn.yaml")
    levels = [f"a0: &a0 [{', '.join(['lol'] * 9)}]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]"
                                                           for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\nname: *a8\n")
    bag = _dagbag(tmp_path)
    assert {"driftline_monitor_churn", "driftline_baseline", "driftline_feedback_churn"} <= set(bag["dag_ids"])
    (path, msg), = bag["errors"].items()
    assert path.endswith("driftline_monitoring.py")
    assert f"{tmp_path / 'bomb.yaml'}: line 5, column 35: refused: the document expands to more than 50000" in msg
    # generous (a DAG file imports Airflow's SDK too); the default import timeout is 30 s
    assert all(s < 10 for s in bag["seconds"].values()), bag["seconds"]


def test_monitoring_dag_shape(airflow_db):
    from driftline_airflow.local_runs import get_dag

    dag = get_dag("driftline_monitor_churn")
    assert dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == {
        "wait_for_capture": ["ingest"],
        "ingest": ["data_quality", "model_quality", "plan_partitions", "record_run", "wait_for_labels"],
        "data_quality": ["alert_data", "record_run"], "plan_partitions": ["profile_partition"],
        "profile_partition": ["drift"], "drift": ["alert_data", "record_run"],
        "wait_for_labels": ["model_quality"], "model_quality": ["alert_quality", "record_run"],
        "alert_data": ["alert_quality", "incidents_opened", "record_run"],
        "alert_quality": ["incidents_opened", "record_run", "retrain_decision"],
        "incidents_opened": ["announce_incidents"], "announce_incidents": [],
        "retrain_decision": ["request_retraining"], "request_retraining": [], "record_run": ["report"],
        "report": ["check_run"], "check_run": []}
    # alerts: sent even when a stage failed; one at a time across runs, and no depends_on_past,
    # which Airflow's backfill refuses without a reprocess behaviour (the UI's default)
    for t in ("alert_data", "alert_quality"):
        task_ = dag.get_task(t)
        assert task_.trigger_rule == "all_done" and task_.max_active_tis_per_dag == 1
    assert not [t.task_id for t in dag.tasks if t.depends_on_past]
    # ingest waits until the capture is complete (end + write_delay) without holding a worker
    wait = dag.get_task("wait_for_capture")
    assert type(wait).__name__ == "TimeDeltaSensor" and wait.mode == "reschedule"
    from driftline_airflow.runtime import load_configs

    assert wait.delta == load_configs().models["churn"].capture.write_delay == timedelta(minutes=5)
    # the retraining request updates the Asset the retraining DAG is scheduled on
    (outlet,) = dag.get_task("request_retraining").outlets
    assert outlet.uri == "driftline://churn/retraining"
    retrain = get_dag("driftline_retrain_churn")
    assert [a.uri for a in retrain.timetable.asset_condition.objects] == ["driftline://churn/retraining"]
    assert set(retrain.params) == {"model", "end", "window", "dry_run"}
    # the label wait gives its worker slot back between looks, and a wait that ends without
    # labels does not stop the interval's evaluation
    wait = dag.get_task("wait_for_labels")
    assert wait.mode == "reschedule" and wait.soft_fail
    assert wait.poke_interval == 30 * 60 and wait.timeout >= 2 * 24 * 3600
    assert dag.get_task("model_quality").trigger_rule == "none_failed"
    # a run whose stage failed still records and reports what it has, and its last task fails it
    assert dag.get_task("record_run").trigger_rule == dag.get_task("report").trigger_rule == "all_done"
    check = dag.get_task("check_run")
    assert check.trigger_rule == "all_done" and check.retries == 0 and not check.downstream_task_ids
    # the partitions are profiled by a mapped task: one task instance per row range at run time
    assert type(dag.get_task("profile_partition")).__name__.endswith("MappedOperator")
