"""End to end: the demo scenario through the real monitoring DAG (dag.test()), on the
embedded local store and on a real S3 API (moto's standalone server over HTTP, reached
through an Airflow aws connection with endpoint_url)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from driftline.config import default_monitors_dir, load_all
from driftline.demo import generate_demo
from driftline.stages.baseline import create_baseline
from driftline.store import Store
from driftline.store.history import read_history

CLEAN_DAYS = [0, 2]          # before the drift, no incident, no malformed lines
MALFORMED_DAY = 1            # 3 malformed lines, below the quarantine threshold: still clean
INCIDENT_DAY = 5             # the data-quality incident (and 2 malformed lines)
DRIFT_DAYS = [3, 4, 5, 6]    # +18% monthly charges push values past the baseline's range
DAYS = list(range(7))


def _setup(monkeypatch, demo_root: str, store_url: str, resolver=None) -> tuple[Store, dict]:
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", demo_root)
    monkeypatch.setenv("DRIFTLINE_STORE_URL", store_url)
    manifest = generate_demo(demo_root, rows_per_hour=40, training_rows=6000, resolver=resolver)
    cfg = load_all(default_monitors_dir()).models["churn"]
    store = Store(store_url, resolver=resolver)
    create_baseline(cfg, store, resolver=resolver)
    return store, manifest


def _run(start: datetime, retries: int | None = None):
    from driftline_airflow.local_runs import get_dag, run_interval
    from driftline_airflow.runtime import load_configs

    dag = get_dag("driftline_monitor_churn")
    if retries is not None:
        for t in dag.tasks:
            t.retries = retries
    return run_interval(dag, start, load_configs().models["churn"].interval_end(start))


def _run_days(store: Store, manifest: dict, days: list[int]) -> dict[int, dict]:
    out = {}
    for d in days:
        start = datetime.fromisoformat(manifest["interval_starts"][d])
        dr = _run(start)
        assert str(dr.state).endswith("success"), f"day {d}: {dr.state}"
        prefix = Store.run_prefix("churn", start)
        out[d] = {"prefix": prefix, "run": store.read_json(f"{prefix}/run.json"),
                  "violations": store.read_json(f"{prefix}/constraint_violations.json")["violations"],
                  "drift": store.read_json(f"{prefix}/drift.json")}
    return out


def _checks(violations) -> set[tuple[str, str]]:
    return {(v["constraint_check_type"], v["feature_name"]) for v in violations}


DRIFT_CHECKS = {"baseline_drift_check", "multivariate_drift_check"}
QUALITY_CHECKS = {"model_quality_check", "model_quality_estimate_check", "bias_drift_check"}


def _assert_demo_findings(store: Store, manifest: dict, runs: dict[int, dict]) -> None:
    covariate = set(manifest["drifted_features"]["covariate"])
    incident = set(manifest["dq_incident"]["features"])
    for d in set(runs) & set(DRIFT_DAYS):
        checks = _checks(runs[d]["violations"])
        assert ("range_check", "monthly_charges") in checks, f"drift day {d}: {checks}"
        drifted = set(runs[d]["drift"]["dataset"]["drifted_features"])
        assert {f for c, f in checks if c == "baseline_drift_check"} >= covariate
        if d != INCIDENT_DAY:  # exactly the features the scenario drifted, nothing else
            assert drifted == covariate, f"day {d}: drift flagged {drifted}"
            quality = {(c, f) for c, f in checks if c not in DRIFT_CHECKS | QUALITY_CHECKS}
            assert {c for c, _ in quality} == {"range_check"} and {f for _, f in quality} <= covariate, f"day {d}: {checks}"
        else:  # plus what the incident broke: 60% of a 4-hour window without age, a new region
            assert covariate | {"age", "region"} <= drifted <= covariate | incident, f"day {d}: drift flagged {drifted}"
        # attribution: the lead feature is a drifted one, and the summary says so
        lead = next(r for r in runs[d]["drift"]["attribution"] if r["drifted"])
        assert lead["feature"] in drifted and f"`{lead['feature']}`" in runs[d]["drift"]["summary"]
    for d in set(runs) & {*CLEAN_DAYS, MALFORMED_DAY}:
        assert runs[d]["violations"] == [], f"clean day {d} reported {runs[d]['violations']}"
        assert runs[d]["run"]["status"] == "ok"
        assert runs[d]["drift"]["dataset"]["drifted_features"] == [], f"clean day {d}: {runs[d]['drift']['summary']}"
        assert runs[d]["drift"]["summary"].startswith("0 of 11 features drifted")
    # every injected data-quality problem is reported on the incident day
    expected = {(c["check"], c["feature"]) for c in manifest["dq_incident"]["expected_violations"]}
    assert expected <= _checks(runs[INCIDENT_DAY]["violations"])
    assert runs[INCIDENT_DAY]["run"]["status"] == "violations"
    # malformed lines: quarantined with source, line and reason; none dropped
    for d in (MALFORMED_DAY, INCIDENT_DAY):
        prefix = runs[d]["prefix"]
        ingest = store.read_json(f"{prefix}/ingest.json")
        lines = [json.loads(x) for x in store.read_bytes(f"{prefix}/quarantine.jsonl").decode().splitlines() if x]
        day = manifest["interval_starts"][d][:10]
        want = {(m["file"], m["line"]) for m in manifest["malformed"] if m["day"] == day}
        assert {(q["source"], q["line"]) for q in lines} == want
        assert all(q["reason"] and q["raw"] is not None for q in lines)
        batch = store.read_parquet(f"{prefix}/batch.parquet")
        assert ingest["records_seen"] == batch.num_rows + len(lines)
        counts = manifest["per_day"][day]
        assert batch.num_rows == counts["valid_records"]


def _quality_rows(history):
    q = history[history["metric"].str.startswith(("quality.", "labels."))]
    return q.drop(columns=["computed_at", "seconds"]).sort_values(
        ["interval_start", "metric", "segment", "kind"]).reset_index(drop=True)


def _assert_model_quality(store: Store, manifest: dict, runs: dict[int, dict]) -> None:
    """Realized quality falls with the concept drift the scenario plants from the drift day;
    the estimate (which sees only the covariate shift) is recorded next to it."""
    mq = {d: store.read_json(f"{runs[d]['prefix']}/model_quality.json") for d in runs}
    for d, doc in mq.items():
        g = doc["overall"]
        assert g["realized"]["status"] == "ok", f"day {d}: {g['realized']}"
        assert 0.9 < g["coverage"] <= 1.0 and doc["labels"]["labelled"] == g["labelled"]
        assert g["estimated"]["status"] == "ok"
        e = g["estimated"]["metrics"]["accuracy"]
        assert e["lower"] <= e["value"] <= e["upper"]
        assert set(doc["segments"]["internet_service"]) == {"dsl", "fiber", "none"}
    base = mq[0]["baseline_metrics"]["metrics"]
    for d in set(mq) & set(CLEAN_DAYS):
        acc = mq[d]["overall"]["realized"]["metrics"]["accuracy"]
        assert abs(acc - base["accuracy"]) < 0.04, f"clean day {d}: accuracy {acc} vs baseline {base['accuracy']}"
        assert not [v for v in runs[d]["violations"] if v["constraint_check_type"].startswith("model_quality")]
    for d in set(mq) & set(DRIFT_DAYS):
        acc = mq[d]["overall"]["realized"]["metrics"]["accuracy"]
        assert acc < base["accuracy"] - 0.05, f"drift day {d}: accuracy {acc}"
        checks = _checks(store.read_json(f"{runs[d]['prefix']}/constraint_violations.json")["violations"])
        assert ("model_quality_check", "accuracy") in checks
        # the fiber segment, where the concept drift is, falls furthest
        seg = mq[d]["segments"]["internet_service"]
        assert seg["fiber"]["realized"]["metrics"]["accuracy"] < seg["dsl"]["realized"]["metrics"]["accuracy"]
        # the estimate cannot see concept drift: its error is recorded, and it is large
        assert mq[d]["overall"]["estimate_error"]["accuracy"] < -0.03
    # ... but it does track the part of the drop the covariate shift explains
    est = {d: mq[d]["overall"]["estimated"]["metrics"]["accuracy"]["value"] for d in mq}
    clean = [est[d] for d in set(mq) & set(CLEAN_DAYS)]
    drifted = [est[d] for d in set(mq) & set(DRIFT_DAYS)]
    if clean and drifted:
        assert max(drifted) < min(clean) and sum(drifted) / len(drifted) < sum(clean) / len(clean) - 0.02, est


@pytest.mark.e2e
def test_demo_end_to_end_local(tmp_path, monkeypatch, airflow_db):
    store, manifest = _setup(monkeypatch, f"file://{tmp_path}/demo", f"file://{tmp_path}/store")
    # the first interval runs before any label has arrived: estimate only
    gt = tmp_path / "demo" / "ground-truth"
    gt.rename(tmp_path / "demo" / "ground-truth-later")
    first = _run_days(store, manifest, [0])[0]
    mq0 = store.read_json(f"{first['prefix']}/model_quality.json")
    assert mq0["overall"]["realized"]["status"] == "not_enough_labels" and mq0["overall"]["coverage"] == 0
    assert mq0["overall"]["estimated"]["status"] == "ok"
    assert "not enough labels: 0 of" in mq0["summary"]
    h0 = read_history(store, "churn")
    assert set(h0[h0["metric"] == "quality.accuracy"]["kind"]) == {"estimated"}
    # the labels land; the next run re-evaluates the first interval
    (tmp_path / "demo" / "ground-truth-later").rename(gt)
    runs = {0: first, **_run_days(store, manifest, DAYS[1:])}
    _assert_demo_findings(store, manifest, runs)
    _assert_model_quality(store, manifest, runs)
    h = read_history(store, "churn")
    day0 = h[(h["metric"] == "quality.accuracy") & (h["segment"] == "")
             & (h["interval_start"].dt.strftime("%Y-%m-%d") == manifest["interval_starts"][0][:10])]
    assert sorted(day0["kind"]) == ["estimated", "realized"]
    assert store.read_json(f"{first['prefix']}/run.json")["model_quality"].startswith("model_quality churn")
    prefix = runs[INCIDENT_DAY]["prefix"]
    for name in ("batch.parquet", "quarantine.jsonl", "ingest.json", "gx_validation.json", "quality.json",
                 "data_docs/index.html", "constraint_violations.json", "run.json", "drift.json",
                 "current_profile.json", "profiles/part-00000.json", "report.html", "alerts.data.json",
                 "alerts.quality.json", "bias.json"):
        assert store.exists(f"{prefix}/{name}"), name
    history = read_history(store, "churn")
    assert set(history["interval_start"].dt.strftime("%Y-%m-%d")) == {manifest["interval_starts"][d][:10] for d in DAYS}
    # idempotent: re-running the incident day replaces its artifacts, duplicates nothing
    before = {n: store.read_bytes(f"{prefix}/{n}") for n in ("batch.parquet", "quarantine.jsonl", "constraint_violations.json")}
    rerun = _run_days(store, manifest, [INCIDENT_DAY])
    assert sorted(map(json.dumps, rerun[INCIDENT_DAY]["violations"])) == sorted(map(json.dumps, runs[INCIDENT_DAY]["violations"]))
    assert {n: store.read_bytes(f"{prefix}/{n}") for n in before} == before
    assert len(read_history(store, "churn")) == len(history)

    # a backfill of the same intervals into a fresh store, all labels there from the start,
    # gives exactly the model-quality history the scheduled runs and re-evaluations left
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{tmp_path}/store2")
    store2 = Store(f"file://{tmp_path}/store2")
    create_baseline(load_all(default_monitors_dir()).models["churn"], store2)
    again = [0, 3]
    _run_days(store2, manifest, again)
    keep = {manifest["interval_starts"][d][:10] for d in again}
    old = _quality_rows(history)
    old = old[old["interval_start"].dt.strftime("%Y-%m-%d").isin(keep)].reset_index(drop=True)
    import pandas.testing as pdt

    pdt.assert_frame_equal(_quality_rows(read_history(store2, "churn")), old)


#: A whole run of an empty interval takes ~20 s on the 2-core reference machine; 180 s leaves room for a busy one.
WATCHDOG_SECONDS = 180


@pytest.mark.e2e
def test_empty_interval_is_no_data(tmp_path, monkeypatch, airflow_db):
    """An interval without a captured record, whose label deadline (end + labels.delay, 2 days)
    is still ahead: the label wait must not hold the run open for labels of zero predictions.
    The run ends at once, every stage says no data, and the verdict is "no_data"."""
    import _thread
    import threading

    store, manifest = _setup(monkeypatch, f"file://{tmp_path}/demo", f"file://{tmp_path}/store")
    now = datetime.now(timezone.utc)
    # the day before yesterday: ended over a day ago (its ingest does not wait for late
    # capture objects), its label deadline (end + 2 days) is still ahead
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    assert start.strftime("%Y-%m-%d") not in {s[:10] for s in manifest["interval_starts"]}
    assert start + timedelta(days=3) > now  # only "no data" can end the wait

    # Broken, the sensor reschedules every poke_interval (30 min) until the deadline, days
    # away: a watchdog interrupts the run instead of letting the test hang. (Not SIGALRM:
    # Airflow's task timeouts reset the alarm; an interrupt lands in dag.test()'s loop.)
    watchdog = threading.Timer(WATCHDOG_SECONDS, _thread.interrupt_main)
    watchdog.start()
    try:
        dr = _run(start)
    except KeyboardInterrupt:
        pytest.fail(f"the run was held open for {WATCHDOG_SECONDS} s: wait_for_labels did not end on an "
                    f"interval without data")
    finally:
        watchdog.cancel()
    assert str(dr.state).endswith("success")
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["wait_for_labels"].endswith("success"), states
    prefix = Store.run_prefix("churn", start)
    run = store.read_json(f"{prefix}/run.json")
    assert run["status"] == "no_data" and run["violations"] == 0
    assert {k: run["stages"][k]["status"] for k in ("data_quality", "drift", "model_quality")} == dict.fromkeys(
        ("data_quality", "drift", "model_quality"), "no_data")
    waited = store.read_json(f"{prefix}/model_quality.json")["waited"]
    assert waited["done"] and waited["no_data"] and not waited["timed_out"]
    assert "NO DATA" in store.read_bytes(f"{prefix}/report.html").decode()


@pytest.mark.e2e
@pytest.mark.s3
def test_demo_end_to_end_on_s3(tmp_path, monkeypatch, airflow_db, s3_conn):
    from driftline_airflow.runtime import resolver

    endpoint, bucket = s3_conn
    store, manifest = _setup(monkeypatch, f"s3://{bucket}/demo", f"s3://{bucket}/store", resolver=resolver("aws_default"))
    runs = _run_days(store, manifest, [0, 1, 5])
    _assert_demo_findings(store, manifest, runs)
    _assert_model_quality(store, manifest, runs)  # labels read from the bucket too
    # the artifacts really are objects in the bucket, read back over HTTP with boto3
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="store/runs/churn/")["Contents"]}
    assert f"store/{runs[INCIDENT_DAY]['prefix']}/constraint_violations.json" in keys


@pytest.mark.e2e
def test_unreachable_store_fails_with_its_url(tmp_path, monkeypatch, airflow_db):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("DRIFTLINE_STORE_URL", f"file://{blocker}/store")
    monkeypatch.setenv("DRIFTLINE_DEMO_ROOT", f"file://{tmp_path}/demo")
    dr = _run(datetime.fromisoformat("2026-10-01T00:00:00+00:00"), retries=0)
    assert str(dr.state).endswith("failed")


@pytest.mark.e2e
def test_baseline_dag_writes_a_new_version(tmp_path, monkeypatch, airflow_db):
    from driftline_airflow.local_runs import get_dag

    store, _ = _setup(monkeypatch, f"file://{tmp_path}/demo", f"file://{tmp_path}/store")  # makes v1
    dr = get_dag("driftline_baseline").test(run_conf={"model": "churn", "training_data": ""})
    assert str(dr.state).endswith("success")
    from driftline.store.baselines import list_versions

    assert list_versions(store, "churn") == ["v1", "v2"]
    assert store.read_json("baselines/churn/v2/manifest.json")["rows"] == 6000


@pytest.mark.e2e
def test_drift_fans_out_over_partitions_and_merges(tmp_path, monkeypatch, airflow_db):
    """With drift.partition_rows small, one interval is profiled by several mapped task
    instances; their merged profile gives the verdicts one partition gives."""
    store, manifest = _setup(monkeypatch, f"file://{tmp_path}/demo", f"file://{tmp_path}/store")
    day = DRIFT_DAYS[1]
    one = _run_days(store, manifest, [day])[day]["drift"]
    monitors = tmp_path / "monitors"
    monitors.mkdir()
    text = (default_monitors_dir() / "churn.yaml").read_text()
    base = default_monitors_dir().resolve()
    text = text.replace("../../data/demo", str(base.parent.parent / "data" / "demo"))
    (monitors / "churn.yaml").write_text(text + "\ndrift:\n  partition_rows: 300\n")
    monkeypatch.setenv("DRIFTLINE_MONITORS_DIR", str(monitors))
    start = datetime.fromisoformat(manifest["interval_starts"][day])
    dr = _run(start)
    assert str(dr.state).endswith("success")
    mapped = [ti for ti in dr.get_task_instances() if ti.task_id == "profile_partition"]
    many = store.read_json(f"{Store.run_prefix('churn', start)}/drift.json")
    rows = many["rows"]
    assert len(mapped) == many["partitions"] == -(-rows // 300) > 1
    assert all(str(ti.state).endswith("success") for ti in mapped)
    assert many["rows"] == one["rows"] and many["dataset"]["drifted_features"] == one["dataset"]["drifted_features"]
    for f, r in one["features"].items():  # exact parts of the profiles merge exactly
        assert many["features"][f]["reference"] == r["reference"]
        assert many["features"][f]["current"]["count"] == r["current"]["count"]
        assert many["features"][f]["missing"] == r["missing"]
