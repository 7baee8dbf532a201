import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats as sps

from driftline import baseline
from driftline.baseline import BaselineError
from driftline.store import Store


@pytest.fixture
def training(tmp_path):
    rng = np.random.default_rng(42)
    n = 5000
    df = pd.DataFrame({
        "x": rng.normal(10, 2, n), "k": rng.poisson(3, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]), "b": rng.random(n) < 0.3,
        "label": rng.integers(0, 2, n),
    })
    df.loc[rng.choice(n, 123, replace=False), "x"] = np.nan
    df.to_parquet(tmp_path / "train.parquet")
    return df


def _feature(doc, name):
    return next(f for f in doc["features"] if f["name"] == name)


def test_statistics_match_independent_computation(tmp_path, training, make_config):
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    out = baseline.create_baseline(cfg, store)
    assert out["version"] == "v1" and out["rows"] == 5000
    st = store.read_json("baselines/m/v1/statistics.json")
    assert st["dataset"]["item_count"] == 5000
    x = training["x"].dropna().to_numpy()
    num = _feature(st, "x")["numerical_statistics"]
    assert _feature(st, "x")["inferred_type"] == "Fractional"
    assert num["common"] == {"num_present": 4877, "num_missing": 123}
    d = sps.describe(x)  # scipy as the independent reference
    assert num["mean"] == pytest.approx(d.mean, rel=1e-12)
    assert num["std_dev"] == pytest.approx(np.sqrt(d.variance * (d.nobs - 1) / d.nobs), rel=1e-9)  # population sd
    assert (num["min"], num["max"]) == pytest.approx(d.minmax)
    assert num["sum"] == pytest.approx(x.sum())
    buckets = num["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == 4877
    assert buckets[0]["lower_bound"] == pytest.approx(x.min()) and buckets[-1]["upper_bound"] == pytest.approx(x.max())
    # a bucket count, by hand: values in the 5th equal-width bucket
    lo, hi = buckets[4]["lower_bound"], buckets[4]["upper_bound"]
    assert buckets[4]["count"] == ((x >= lo) & (x < hi)).sum()
    cat = _feature(st, "c")["string_statistics"]
    counts = training["c"].value_counts()
    assert cat["distinct_count"] == 3
    assert {b["value"]: b["count"] for b in cat["distribution"]["categorical"]["buckets"]} == counts.to_dict()
    assert _feature(st, "k")["inferred_type"] == "Integral"


def test_suggested_constraints(tmp_path, training, make_config):
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    baseline.create_baseline(cfg, store)
    c = store.read_json("baselines/m/v1/constraints.json")
    x = _feature(c, "x")
    assert x["completeness"] == pytest.approx(4877 / 5000)
    assert x["num_constraints"] == {"is_non_negative": bool(training["x"].min() >= 0)}
    assert _feature(c, "k")["num_constraints"] == {"is_non_negative": True}
    assert _feature(c, "c")["string_constraints"] == {"domains": ["a", "b", "c"]}
    assert _feature(c, "b")["string_constraints"] == {"domains": ["false", "true"]}
    mc = c["monitoring_config"]
    assert mc["datatype_check_threshold"] == 1.0 and mc["domain_content_threshold"] == 1.0
    assert mc["distribution_constraints"]["comparison_method"] == "Robust"


def test_suite_derived_from_constraints(tmp_path, training, make_config):
    cfg = make_config(thresholds={"completeness_slack": 0.05})
    store = Store(f"file://{tmp_path}/store")
    baseline.create_baseline(cfg, store)
    suite = store.read_json("baselines/m/v1/expectations.json")
    by = {(e["meta"]["constraint_check_type"], e["meta"]["feature_name"]): e for e in suite["expectations"]}
    assert by[("completeness_check", "x")]["kwargs"]["mostly"] == pytest.approx(4877 / 5000 - 0.05)
    assert by[("categorical_values_check", "c")]["kwargs"]["value_set"] == ["a", "b", "c"]
    assert by[("data_type_check", "k")]["kwargs"]["column"] == "__unparsed__k"
    assert ("data_type_check", "c") not in by  # any text is a valid category
    rng = by[("range_check", "x")]["kwargs"]
    span = training["x"].max() - training["x"].min()
    assert rng["min_value"] == pytest.approx(training["x"].min() - 0.1 * span)
    assert {("missing_column_check", c) for c in ["inference_id", "inference_time", "x", "pred", "proba"]} <= set(by)


def test_versions_are_never_overwritten(tmp_path, training, make_config):
    cfg = make_config()
    store = Store(f"file://{tmp_path}/store")
    assert baseline.create_baseline(cfg, store)["version"] == "v1"
    first = store.read_bytes("baselines/m/v1/statistics.json")
    assert baseline.create_baseline(cfg, store)["version"] == "v2"
    assert store.read_bytes("baselines/m/v1/statistics.json") == first
    assert baseline.list_versions(store, "m") == ["v1", "v2"]
    assert baseline.resolve_baseline(cfg, store).version == "v2"
    assert baseline.resolve_baseline(cfg, store, "v1").version == "v1"
    # an incomplete version (no manifest, e.g. a crashed write) is skipped, and not reused
    store.write_json("baselines/m/v3/statistics.json", {})
    assert baseline.list_versions(store, "m") == ["v1", "v2"]
    assert baseline.create_baseline(cfg, store)["version"] == "v4"


def test_no_baseline_is_a_clear_error(tmp_path, make_config):
    with pytest.raises(BaselineError, match="no baseline.*driftline baseline --model m"):
        baseline.resolve_baseline(make_config(), Store(f"file://{tmp_path}/store"))


def test_bad_training_data(tmp_path, training, make_config):
    store = Store(f"file://{tmp_path}/store")
    with pytest.raises(BaselineError, match="lacks declared features \\['z'\\]"):
        baseline.create_baseline(make_config(features=[{"name": "z", "type": "numeric"}]), store)
    with pytest.raises(BaselineError, match="no such file"):
        baseline.create_baseline(make_config(), store, training_data=f"file://{tmp_path}/nope.parquet")
    training.assign(x=["oops"] * len(training)).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(BaselineError, match="'x' declared numeric"):
        baseline.create_baseline(make_config(), store, training_data=f"file://{tmp_path}/bad.parquet")


def test_csv_training_data(tmp_path, training, make_config):
    training.to_csv(tmp_path / "train.csv", index=False)
    store = Store(f"file://{tmp_path}/store")
    out = baseline.create_baseline(make_config(), store, training_data=f"file://{tmp_path}/train.csv")
    assert out["rows"] == 5000


SAGEMAKER_CONSTRAINTS = {
    "version": 0.0,
    "features": [
        {"name": "x", "inferred_type": "Fractional", "completeness": 1.0, "num_constraints": {"is_non_negative": True}},
        {"name": "k", "inferred_type": "Integral", "completeness": 0.9},
        {"name": "c", "inferred_type": "String", "completeness": 1.0, "string_constraints": {"domains": ["a", "b"]}},
        {"name": "b", "inferred_type": "String", "completeness": 1.0},
    ],
    "monitoring_config": {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled",
                          "datatype_check_threshold": 0.95, "domain_content_threshold": 0.9,
                          "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.2,
                                                       "comparison_method": "Simple"}},
}


def sagemaker_statistics(rng) -> dict:
    """A statistics.json as SageMaker writes it: x with a KLL sketch (compactor levels: an item
    of level i stands for 2^i values), k with buckets only, c and b as string statistics."""
    x = rng.normal(50, 10, 4000)
    level0, level1 = np.sort(x[:1000]), np.sort(x[1000:])[::2]  # 1000 + 1500 items x 2 = 4000 values
    k = rng.poisson(3, 900)
    counts, edges = np.histogram(k, bins=10)

    def num(values, kll):
        return {"common": {"num_present": len(values), "num_missing": 0}, "mean": float(values.mean()),
                "sum": float(values.sum()), "std_dev": float(values.std()), "min": float(values.min()),
                "max": float(values.max()), "distribution": {"kll": kll}}

    return {"version": 0.0, "dataset": {"item_count": 4000}, "features": [
        {"name": "x", "inferred_type": "Fractional", "numerical_statistics": num(x, {
            "buckets": [], "sketch": {"parameters": {"c": 0.64, "k": 2048.0},
                                      "data": [level0.tolist(), level1.tolist()]}})},
        {"name": "k", "inferred_type": "Integral", "numerical_statistics": {
            **num(k.astype(float), {"buckets": [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]),
                                                  "count": float(counts[i])} for i in range(10)]}),
            "common": {"num_present": 900, "num_missing": 100}}},
        {"name": "c", "inferred_type": "String", "string_statistics": {
            "common": {"num_present": 4000, "num_missing": 0}, "distinct_count": 2.0,
            "distribution": {"categorical": {"buckets": [{"value": "a", "count": 3000.0}, {"value": "b", "count": 1000.0}]}}}},
        {"name": "b", "inferred_type": "String", "string_statistics": {
            "common": {"num_present": 4000, "num_missing": 0}, "distinct_count": 2.0,
            "distribution": {"categorical": {"buckets": [{"value": "false", "count": 2000.0}, {"value": "true", "count": 2000.0}]}}}},
    ]}, x


def test_import_sagemaker_baseline(tmp_path, make_config):
    (tmp_path / "constraints.json").write_text(json.dumps(SAGEMAKER_CONSTRAINTS))
    stats_doc, x = sagemaker_statistics(np.random.default_rng(3))
    (tmp_path / "statistics.json").write_text(json.dumps(stats_doc))
    store = Store(f"file://{tmp_path}/store")
    out = baseline.import_sagemaker_baseline(make_config(), store, f"file://{tmp_path}/statistics.json",
                                             f"file://{tmp_path}/constraints.json")
    assert out["version"] == "v1"
    suite = store.read_json("baselines/m/v1/expectations.json")
    by = {(e["meta"]["constraint_check_type"], e["meta"]["feature_name"]): e for e in suite["expectations"]}
    # SageMaker's thresholds are honoured, not ours
    assert by[("data_type_check", "x")]["kwargs"]["mostly"] == 0.95
    assert by[("categorical_values_check", "c")]["kwargs"] == {"column": "c", "value_set": ["a", "b"], "mostly": 0.9}
    assert by[("range_check", "x")]["kwargs"]["min_value"] == 0
    assert store.read_json("baselines/m/v1/manifest.json")["origin"] == "sagemaker_import"
    # its statistics become the drift profile: exact counts and moments, the KLL rebuilt with
    # its levels' weights, and its distribution_constraints choose the drift methods
    cfg = make_config()
    ref = baseline.load_reference(cfg, store, baseline.resolve_baseline(cfg, store))
    px = ref.profile.columns["x"]
    assert (px.count, px.missing) == (4000, 0) and px.mean == pytest.approx(x.mean())
    assert px.variance == pytest.approx(x.var())
    values, weights = px.weighted_items()
    assert weights.sum() == pytest.approx(4000, rel=0.01)
    assert px.quantile(0.5) == pytest.approx(np.median(x), abs=0.02 * x.std())
    assert ref.profile.columns["k"].missing == 100 and ref.profile.columns["c"].counts == {"a": 3000, "b": 1000}
    assert ref.distribution["comparison_method"] == "Simple"
    from driftline.drift_engine import compare, specs_from
    from driftline.profile import profile_table

    rng = np.random.default_rng(4)
    cur = pa.table({"x": rng.normal(56, 10, 5000), "k": rng.poisson(3, 5000), "c": rng.choice(["a", "b"], 5000, p=[0.75, 0.25]),
                    "b": rng.choice([True, False], 5000)})
    out = compare(ref, profile_table(cur, specs_from(ref.profile, list(ref.kinds))), cfg.drift,
                  current_sample=cur.to_pandas())
    assert out["features"]["x"]["method"] == "linf_cdf_simple" and out["features"]["x"]["threshold"] == 0.2
    assert out["features"]["x"]["drifted"]  # 0.6 sd moves the CDF by ~0.24 > 0.2
    assert out["features"]["c"]["method"] == "linf" and not out["features"]["c"]["drifted"]
    assert out["multivariate"]["checked"] is False and "keeps no reference sample" in out["multivariate"]["why"]
    (tmp_path / "c2.json").write_text(json.dumps({**SAGEMAKER_CONSTRAINTS, "features": SAGEMAKER_CONSTRAINTS["features"][:2]}))
    with pytest.raises(BaselineError, match="lack declared features \\['c', 'b'\\]"):
        baseline.import_sagemaker_baseline(make_config(), store, f"file://{tmp_path}/statistics.json", f"file://{tmp_path}/c2.json")
