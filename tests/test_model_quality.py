"""The model-quality stage on small hand-made intervals: not enough labels says so and raises
nothing, realized metrics match scikit-learn, breaches become violations (an estimate's only
when its whole band is past the bound), re-evaluation picks up late labels once and only
once, and the label wait stops at the coverage target or the deadline."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from driftline.config import ConfigError
from driftline.pipeline.reevaluate import reevaluate
from driftline.stages.baseline import create_baseline
from driftline.stages.model_quality import label_wait, run_model_quality
from driftline.store import Store
from driftline.store.history import read_history

UTC = timezone.utc
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
DAY1 = DAY0 + timedelta(days=1)


def _rows(rng, n, hard=False):
    proba = rng.beta(5, 5, n) if hard else rng.beta(0.6, 0.6, n)
    return {"x": rng.normal(size=n), "k": rng.integers(0, 5, n), "c": rng.choice(["a", "b"], n, p=[0.9, 0.1]),
            "b": rng.random(n) < 0.5, "proba": proba, "pred": (proba >= 0.5).astype("int64"),
            "truth": (rng.random(n) < proba).astype("int64")}


@pytest.fixture
def env(make_config, tmp_path):
    rng = np.random.default_rng(5)
    train = _rows(rng, 4000)
    pq.write_table(pa.table(train), tmp_path / "train.parquet")
    cfg = make_config(labels={"uri": str(tmp_path / "gt"), "format": "jsonl", "column": "truth", "delay": "2d",
                              "min_coverage": 0.9},
                      performance={"segments": ["c"], "min_samples": 100},
                      baseline={"training_data": str(tmp_path / "train.parquet"), "sample_rows": 0})
    store = Store(f"file://{tmp_path}/store")
    create_baseline(cfg, store)
    return cfg, store, rng, tmp_path


def _interval(store, start, rows):
    n = len(rows["x"])
    ids = [f"id-{start:%d}-{i}" for i in range(n)]
    table = pa.table({"inference_id": ids,
                      "inference_time": pa.array([start + timedelta(seconds=i) for i in range(n)],
                                                 pa.timestamp("us", tz="UTC")),
                      **{k: rows[k] for k in ("x", "k", "c", "b", "pred", "proba")}})
    store.write_parquet(f"{Store.run_prefix('m', start)}/batch.parquet", table)
    return ids


def _labels(tmp_path, hour, ids, truth):
    d = tmp_path / "gt" / hour.strftime("%Y/%m/%d/%H")
    d.mkdir(parents=True, exist_ok=True)
    (d / "l.jsonl").write_text("".join(json.dumps({"inference_id": i, "truth": t.item()}) + "\n"
                                       for i, t in zip(ids, truth)))


def test_baseline_keeps_quality_and_calibration(env):
    cfg, store, _, _ = env
    perf = store.read_json("baselines/m/v1/performance.json")
    assert perf["rows"] == 4000 and set(perf["segments"]["c"]) == {"a", "b"}
    assert perf["calibrator"]["problem_type"] == "binary_classification"
    assert 0.7 < perf["metrics"]["metrics"]["accuracy"] < 0.95


def test_not_enough_labels_is_said_and_raises_nothing(env):
    cfg, store, rng, tmp_path = env
    rows = _rows(rng, 600)
    ids = _interval(store, DAY0, rows)
    _labels(tmp_path, DAY0 + timedelta(days=2), ids[:50], rows["truth"][:50])
    from driftline.stages.labels import sync_labels

    sync_labels(cfg, store, now=DAY0 + timedelta(days=5))
    out = run_model_quality(cfg, store, DAY0, DAY1, as_of=DAY0 + timedelta(days=5))
    doc = store.read_json(f"{Store.run_prefix('m', DAY0)}/model_quality.json")
    g = doc["overall"]
    assert g["realized"]["status"] == "not_enough_labels" and g["labelled"] == 50
    assert "not enough labels: 50 of 600 predictions labelled, 100 needed" in out["summary"]
    assert g["estimated"]["status"] == "ok" and g["breaches"] == []
    h = read_history(store, "m")
    assert set(h[h["metric"] == "quality.accuracy"]["kind"]) == {"estimated"}
    cov = h[(h["metric"] == "labels.coverage") & (h["segment"] == "")]["value"].item()
    assert cov == pytest.approx(50 / 600)


def test_realized_metrics_match_sklearn_and_breaches_are_violations(env):
    cfg, store, rng, tmp_path = env
    rows = _rows(rng, 800)
    ids = _interval(store, DAY0, rows)
    truth = rows["truth"].copy()
    truth[:300] = 1 - truth[:300]  # the model got worse: 300 labels contradict it
    _labels(tmp_path, DAY0 + timedelta(days=2), ids, truth)
    from driftline.stages.labels import sync_labels

    sync_labels(cfg, store, now=DAY0 + timedelta(days=5))
    run_model_quality(cfg, store, DAY0, DAY1, as_of=DAY0 + timedelta(days=5))
    prefix = Store.run_prefix("m", DAY0)
    doc = store.read_json(f"{prefix}/model_quality.json")
    real = doc["overall"]["realized"]["metrics"]
    assert real["accuracy"] == pytest.approx(accuracy_score(truth, rows["pred"]), abs=1e-12)
    assert real["roc_auc"] == pytest.approx(roc_auc_score(truth, rows["proba"]), abs=1e-12)
    seg_a = np.asarray(rows["c"]) == "a"
    assert doc["segments"]["c"]["a"]["realized"]["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(truth[seg_a], rows["pred"][seg_a]))
    # the estimate did not see the flipped labels: its error is recorded
    assert doc["overall"]["estimate_error"]["accuracy"] < -0.2
    from driftline.store.violations import read_violations

    found = [v for v in read_violations(store, prefix) if v["source"] == "model_quality"]
    names = {v["feature_name"] for v in found}
    assert {"accuracy", "roc_auc"} <= names and all(v["constraint_check_type"] == "model_quality_check" for v in found)
    acc = next(v for v in found if v["feature_name"] == "accuracy")
    assert acc["description"].startswith(f"accuracy {real['accuracy']:.3f} < ") and "800 labelled rows" in acc["description"]


def test_an_estimate_breaches_only_with_its_whole_band(env):
    cfg, store, rng, _ = env
    # harder cases (scores near 0.5, still calibrated) and no labels: the estimate falls
    rows = _rows(rng, 3000, hard=True)
    rows["c"] = np.where(np.arange(3000) < 12, "b", "a")  # a tiny segment: wide band
    _interval(store, DAY0, rows)
    run_model_quality(cfg, store, DAY0, DAY1, as_of=DAY0 + timedelta(days=5))
    doc = store.read_json(f"{Store.run_prefix('m', DAY0)}/model_quality.json")
    est = doc["overall"]["estimated"]["metrics"]["accuracy"]
    base = doc["baseline_metrics"]["metrics"]["accuracy"]
    assert est["upper"] < base * 0.95
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]}
    assert ("accuracy", "model_quality_estimate_check") in kinds
    tiny = doc["segments"]["c"]["b"]["estimated"]["metrics"]["accuracy"]
    assert tiny["value"] < base * 0.95 <= tiny["upper"]  # its point is past the bound, not its band
    assert not any(n.startswith("accuracy[c=b]") for n, _ in kinds)


def test_reevaluation_picks_up_late_labels_once(env):
    cfg, store, rng, tmp_path = env
    from driftline.stages.labels import sync_labels

    rows = _rows(rng, 500)
    ids = _interval(store, DAY0, rows)
    t1 = DAY0 + timedelta(days=1, hours=6)
    sync_labels(cfg, store, now=t1)
    run_model_quality(cfg, store, DAY0, DAY1, as_of=t1)  # nothing has arrived yet
    _labels(tmp_path, DAY0 + timedelta(days=2, hours=3), ids[:400], rows["truth"][:400])
    t2 = DAY0 + timedelta(days=4)
    sync_labels(cfg, store, now=t2)
    first = reevaluate(cfg, store, now=t2)
    assert [d["interval"] for d in first["reevaluated"]] == ["2026-10-01T0000Z"]
    assert first["reevaluated"][0]["coverage"] == pytest.approx(0.8)
    again = reevaluate(cfg, store, now=t2 + timedelta(hours=1))
    assert again["reevaluated"] == []
    h = read_history(store, "m")
    assert not h.duplicated(["interval_start", "metric", "segment", "kind"]).any()
    assert set(h[(h["metric"] == "quality.accuracy") & (h["segment"] == "")]["kind"]) == {"estimated", "realized"}


def test_label_wait_stops_at_coverage_or_deadline(env):
    cfg, store, rng, tmp_path = env
    rows = _rows(rng, 200)
    ids = _interval(store, DAY0, rows)
    _labels(tmp_path, DAY0 + timedelta(days=1, hours=2), ids[:100], rows["truth"][:100])
    early = label_wait(cfg, store, DAY0, DAY1, now=DAY0 + timedelta(days=1, hours=5))
    assert (early["done"], early["coverage"]) == (False, 0.5)
    _labels(tmp_path, DAY0 + timedelta(days=1, hours=8), ids[100:195], rows["truth"][100:195])
    enough = label_wait(cfg, store, DAY0, DAY1, now=DAY0 + timedelta(days=1, hours=9))
    assert enough["done"] and not enough["timed_out"] and enough["coverage"] == pytest.approx(0.975)
    # the next interval gets no labels: the wait ends at its end + labels.delay, not before
    _interval(store, DAY1, _rows(rng, 100))
    before = label_wait(cfg, store, DAY1, DAY1 + timedelta(days=1), now=DAY1 + timedelta(days=2, hours=23))
    assert not before["done"]
    late = label_wait(cfg, store, DAY1, DAY1 + timedelta(days=1), now=DAY1 + timedelta(days=3))
    assert late["done"] and late["timed_out"] and late["coverage"] == 0


def test_quality_settings_are_validated(make_config):
    with pytest.raises(ConfigError, match=r"performance.thresholds: \['auc'\] are not metrics of a binary"):
        make_config(performance={"thresholds": {"auc": {"min": 0.7}}})
    with pytest.raises(ConfigError, match=r"performance.segments\[0\]: 'zone' is not a declared feature"):
        make_config(performance={"segments": ["zone"]})
    with pytest.raises(ConfigError, match="give at least one of min, max, max_drop"):
        make_config(performance={"thresholds": {"accuracy": {}}})
    cfg = make_config(performance={"thresholds": {"accuracy": {"min": 0.7, "max_drop": 0.1}}})
    assert cfg.quality_thresholds == {"accuracy": {"min": 0.7, "max_drop": 0.1}}
    assert make_config().quality_thresholds["roc_auc"] == {"max_drop": 0.05}


def test_regression_realized_and_direct_loss_estimate(make_config, tmp_path):
    rng = np.random.default_rng(11)

    def rows(n, noisy_share):
        x = np.where(rng.random(n) < noisy_share, rng.uniform(2, 3, n), rng.uniform(0, 1, n))
        pred = 3 * x
        truth = pred + rng.normal(0, 0.1 + x, n)  # the error grows with x
        return {"x": x, "k": rng.integers(0, 5, n), "c": rng.choice(["a", "b"], n), "b": rng.random(n) < 0.5,
                "pred": pred, "truth": truth}
    pq.write_table(pa.table(rows(3000, 0.2)), tmp_path / "train.parquet")
    cfg = make_config(problem_type="regression", prediction={"label": "pred"},
                      labels={"uri": str(tmp_path / "gt"), "format": "jsonl", "column": "truth"},
                      performance={"min_samples": 100},
                      baseline={"training_data": str(tmp_path / "train.parquet"), "sample_rows": 0})
    store = Store(f"file://{tmp_path}/store")
    create_baseline(cfg, store)
    assert store.exists("baselines/m/v1/loss_estimator.joblib")
    cur = rows(1500, 0.6)  # more rows where the model errs most
    ids = [f"r{i}" for i in range(1500)]
    store.write_parquet(f"{Store.run_prefix('m', DAY0)}/batch.parquet", pa.table({
        "inference_id": ids, "inference_time": pa.array([DAY0] * 1500, pa.timestamp("us", tz="UTC")),
        **{k: cur[k] for k in ("x", "k", "c", "b", "pred")}}))
    _labels(tmp_path, DAY0 + timedelta(hours=30), ids, cur["truth"])
    from driftline.stages.labels import sync_labels

    sync_labels(cfg, store, now=DAY0 + timedelta(days=3))
    run_model_quality(cfg, store, DAY0, DAY1, as_of=DAY0 + timedelta(days=3))
    doc = store.read_json(f"{Store.run_prefix('m', DAY0)}/model_quality.json")
    real, est = doc["overall"]["realized"]["metrics"], doc["overall"]["estimated"]["metrics"]
    assert real["mae"] == pytest.approx(np.mean(np.abs(cur["truth"] - cur["pred"])), rel=1e-12)
    assert est["mae"]["value"] == pytest.approx(real["mae"], rel=0.1)
    assert est["rmse"]["value"] == pytest.approx(real["rmse"], rel=0.1)
    # the error rose well past the baseline's: a violation, realized
    assert ("mae", "model_quality_check") in {(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]}


def test_runs_waiting_for_labels_do_not_hold_back_the_next_intervals(make_config, tmp_path):
    labels = {"uri": str(tmp_path / "gt"), "delay": "2d"}
    assert make_config(labels=labels).concurrent_runs == 4                       # daily: 2 waiting + 2
    assert make_config(labels=labels, schedule="hourly").concurrent_runs == 50   # 48 waiting + 2
    assert make_config(labels={**labels, "delay": "30d"}, schedule="hourly").concurrent_runs == 64
    assert make_config().concurrent_runs == 4                                    # no labels, no wait


def test_an_interval_without_predictions_is_no_data_at_once(env):
    """Zero captured records: the label wait is done at its first look (days before the
    deadline), data quality, drift and model quality (bias too) each say "no data" instead of
    failing or judging an empty batch, and run.json's verdict is the distinct "no_data" --
    which the report, its summary table and the history view show as NO DATA. A re-run that
    finds the interval empty replaces what the earlier run of it left."""
    from driftline.config import BiasFacet, BiasSettings
    from driftline.pipeline.interval import monitor_interval, run_labels_and_quality
    from driftline.render.history import load_history, render_history
    from driftline.render.report import summary_table
    from driftline.stages.ingest import empty_batch
    from driftline.stages.labels import sync_labels
    from driftline.stats.bias import BIAS_FILE

    cfg, store, rng, tmp_path = env
    cfg = cfg.model_copy(update={"bias": BiasSettings(facets=[BiasFacet(feature="c", values=["b"])])})
    prefix = Store.run_prefix("m", DAY1)
    # an earlier run of the interval, with predictions and labels: metrics, bias, history rows
    rows = _rows(rng, 300)
    ids = _interval(store, DAY1, rows)
    _labels(tmp_path, DAY1 + timedelta(hours=30), ids, rows["truth"])
    sync_labels(cfg, store, now=DAY1 + timedelta(days=2))
    assert run_model_quality(cfg, store, DAY1, DAY1 + timedelta(days=1), as_of=DAY1 + timedelta(days=2))["status"] != "no_data"
    assert len(read_history(store, "m").query("metric.str.startswith('quality.')", engine="python"))

    # the interval again, now without a single record
    store.write_parquet(f"{prefix}/batch.parquet", empty_batch(cfg))
    now = DAY1 + timedelta(days=1, hours=1)  # two days before the label deadline
    look = label_wait(cfg, store, DAY1, DAY1 + timedelta(days=1), now=now)
    assert look["done"] and look["no_data"] and not look["timed_out"] and look["predicted"] == 0
    assert look["summary"].endswith("no data: no predictions to label, nothing to wait for")
    mq = run_labels_and_quality(cfg, store, DAY1, DAY1 + timedelta(days=1), now=now, waited=look)
    assert mq["status"] == "no_data" and mq["violations"] == 0 and mq["predicted"] == 0
    assert mq["summary"] == "model_quality m 2026-10-02T0000Z: NO DATA — no predictions in the interval; nothing to evaluate"
    doc = store.read_json(f"{prefix}/model_quality.json")
    assert (doc["status"], doc["checked"], doc["violations"]) == ("no_data", False, [])
    assert store.read_json(f"{prefix}/{BIAS_FILE}")["status"] == "no_data"
    h = read_history(store, "m")
    assert not len(h[(h["interval_start"] == DAY1) & h["metric"].str.startswith(("quality.", "labels.", "bias."))])

    # the whole interval through the library, as the DAG runs it
    capture = tmp_path / "capture"  # the model's capture location: nothing for this day
    assert not (capture / "2026/10/02").exists()
    out = monitor_interval(cfg, store, DAY1, DAY1 + timedelta(days=1))
    assert out["status"] == "no_data" and out["violations"] == 0
    st = out["stages"]
    assert st["ingest"]["rows"] == 0 and st["ingest"]["records_seen"] == 0
    for stage in ("data_quality", "drift", "model_quality"):
        assert st[stage]["status"] == "no_data" and "NO DATA" in st[stage]["summary"], st[stage]
    run = store.read_json(f"{prefix}/run.json")
    assert run["status"] == "no_data" and run["violation_checks"] == []
    table = summary_table(cfg, store, DAY1)
    assert "NO DATA" in table[0]
    assert {line.split()[0] if not line.startswith("model quality") else "model quality"
            for line in table[2:] if "NO DATA" in line} == {"data", "drift", "model quality", "bias"}
    assert "NO DATA" in store.read_bytes(f"{prefix}/report.html").decode()
    hist = load_history(store, "m")
    [it] = [i for i in hist["intervals"] if i["key"] == "2026-10-02T0000Z"]
    assert it["status"] == "no_data" and "NO DATA" in render_history(hist)
