import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats as sps

from driftline.stages import baseline
from driftline.store import Store, baselines
from driftline.store.baselines import BaselineError


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
    assert baselines.list_versions(store, "m") == ["v1", "v2"]
    assert baselines.resolve_baseline(cfg, store).version == "v2"
    assert baselines.resolve_baseline(cfg, store, "v1").version == "v1"
    # an incomplete version (no manifest, e.g. a crashed write) is skipped, and not reused
    store.write_json("baselines/m/v3/statistics.json", {})
    assert baselines.list_versions(store, "m") == ["v1", "v2"]
    assert baseline.create_baseline(cfg, store)["version"] == "v4"


def test_no_baseline_is_a_clear_error(tmp_path, make_config):
    with pytest.raises(BaselineError, match="no baseline.*driftline baseline --model m"):
        baselines.resolve_baseline(make_config(), Store(f"file://{tmp_path}/store"))


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
    ref = baseline.load_reference(cfg, store, baselines.resolve_baseline(cfg, store))
    px = ref.profile.columns["x"]
    assert (px.count, px.missing) == (4000, 0) and px.mean == pytest.approx(x.mean())
    assert px.variance == pytest.approx(x.var())
    values, weights = px.weighted_items()
    assert weights.sum() == pytest.approx(4000, rel=0.01)
    assert px.quantile(0.5) == pytest.approx(np.median(x), abs=0.02 * x.std())
    assert ref.profile.columns["k"].missing == 100 and ref.profile.columns["c"].counts == {"a": 3000, "b": 1000}
    assert ref.distribution["comparison_method"] == "Simple"
    from driftline.stages.drift import compare, specs_from
    from driftline.stats.profile import profile_table

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


def _import(tmp_path, make_config, monitoring_config: dict, name: str = "constraints.json"):
    (tmp_path / name).write_text(json.dumps({**SAGEMAKER_CONSTRAINTS, "monitoring_config": monitoring_config}))
    stats_doc, x = sagemaker_statistics(np.random.default_rng(3))
    (tmp_path / "statistics.json").write_text(json.dumps(stats_doc))
    store = Store(f"file://{tmp_path}/store")
    out = baseline.import_sagemaker_baseline(make_config(), store, f"file://{tmp_path}/statistics.json",
                                             f"file://{tmp_path}/{name}")
    return store, out, x


def _drift_after_import(store, make_config):
    from driftline.stages.drift import compare, specs_from
    from driftline.stats.profile import profile_table

    cfg = make_config()
    ref = baseline.load_reference(cfg, store, baselines.resolve_baseline(cfg, store))
    rng = np.random.default_rng(4)
    cur = pa.table({"x": rng.normal(52, 10, 5000), "k": rng.poisson(3, 5000),
                    "c": rng.choice(["a", "b"], 5000, p=[0.7, 0.3]), "b": rng.choice([True, False], 5000)})
    return compare(ref, profile_table(cur, specs_from(ref.profile, list(ref.kinds))), cfg.drift), cur


# comparison_method as SageMaker documents it: "Simple" | "Robust" in the constraints.json
# schema, linf_simple | linf_robust in the table under it; any case
@pytest.mark.parametrize("spelling, method", [
    ("Robust", "linf_cdf_robust"), ("robust", "linf_cdf_robust"), ("ROBUST", "linf_cdf_robust"),
    ("linf_robust", "linf_cdf_robust"), ("LInf_Robust", "linf_cdf_robust"),
    ("Simple", "linf_cdf_simple"), ("simple", "linf_cdf_simple"), ("linf_simple", "linf_cdf_simple"),
    ("LINF_SIMPLE", "linf_cdf_simple")])
def test_every_documented_comparison_method_imports_and_drives_drift(tmp_path, make_config, spelling, method):
    store, out, x = _import(tmp_path, make_config, {"distribution_constraints": {
        "perform_comparison": "Enabled", "comparison_threshold": 0.07, "comparison_method": spelling}})
    assert out["monitoring_config"]["distribution"]["numeric_method"] == method
    result, cur = _drift_after_import(store, make_config)
    fx = result["features"]["x"]
    assert fx["method"] == method and fx["threshold"] == 0.07
    # the L-infinity distance of the CDFs against scipy's KS statistic on the raw values (the
    # baseline's KLL is rebuilt from SageMaker's compactor levels: within ~0.02 of exact)
    exact = sps.ks_2samp(x, cur.column("x").to_numpy()).statistic
    crit = 1.3581 * np.sqrt((4000 + 5000) / (4000 * 5000))  # KS critical value at 5%, by hand
    want = exact if method == "linf_cdf_simple" else max(0.0, exact - crit)
    assert fx["statistic"] == pytest.approx(want, abs=0.01)
    # a 0.2 sd shift: D = 0.085 drifts under Simple; Robust subtracts 0.029 and stays under 0.07
    assert fx["drifted"] == (method == "linf_cdf_simple")


@pytest.mark.parametrize("spelling, method, threshold", [
    ("LInfinity", "linf", 0.15), ("linfinity", "linf", 0.15), ("LINFINITY", "linf", 0.15),
    ("ChiSquared", "chi_square", 0.01), ("chisquared", "chi_square", 0.01), ("CHISQUARED", "chi_square", 0.01)])
def test_every_documented_categorical_drift_method_imports_and_drives_drift(tmp_path, make_config, spelling, method,
                                                                          threshold):
    store, out, _ = _import(tmp_path, make_config, {
        "emit_metrics": "disabled", "evaluate_constraints": "ENABLED", "datatype_check_threshold": 0.95,
        "distribution_constraints": {"perform_comparison": "enabled", "categorical_drift_method": spelling,
                                     "categorical_comparison_threshold": threshold}})
    result, cur = _drift_after_import(store, make_config)
    fc = result["features"]["c"]
    assert fc["method"] == method and fc["threshold"] == threshold
    if method == "linf":  # max |share difference|: 0.75 vs 0.70 of 'a', by hand from the counts
        share = (cur.column("c").to_numpy() == "a").mean()
        assert fc["statistic"] == pytest.approx(abs(0.75 - share), abs=1e-12) and fc["drifted"] == (fc["statistic"] >= 0.15)
    else:  # scipy's goodness of fit of the current counts to the baseline's 3:1 shares
        a = int((cur.column("c").to_numpy() == "a").sum())
        p = sps.chisquare([a, 5000 - a], [3750, 1250]).pvalue
        assert fc["pvalue"] == pytest.approx(p, rel=1e-9)
        assert fc["drifted"] == (fc["pvalue_adjusted"] < 0.01) and fc["drifted"]  # 0.70 vs 0.75 on 5000 rows
    # the numbers use SageMaker's defaults: Robust, and the categorical threshold is the
    # comparison_threshold's when absent (0.1)
    assert result["features"]["x"]["method"] == "linf_cdf_robust"
    assert out["summary"].endswith("; not used by driftline: emit_metrics Disabled")
    m = store.read_json("baselines/m/v1/manifest.json")["monitoring_config"]
    assert m["emit_metrics"] is False and m["evaluate_constraints"] is True and m["datatype_check_threshold"] == 0.95


def test_categorical_threshold_defaults_to_the_comparison_threshold(tmp_path, make_config):
    store, out, _ = _import(tmp_path, make_config, {"distribution_constraints": {"comparison_threshold": 0.3}})
    result, _ = _drift_after_import(store, make_config)
    assert result["features"]["c"]["threshold"] == 0.3 and result["features"]["x"]["threshold"] == 0.3


def test_perform_comparison_disabled_in_any_case_turns_drift_off(tmp_path, make_config):
    store, out, _ = _import(tmp_path, make_config, {"distribution_constraints": {"perform_comparison": "DISABLED"}})
    assert "drift off (perform_comparison Disabled)" in out["summary"]
    result, _ = _drift_after_import(store, make_config)
    assert result["checked"] is False and "perform_comparison is Disabled" in result["why"]


def test_the_documented_misspelt_key_and_unused_keys(tmp_path, make_config):
    # an older SageMaker page spells the key "comparion_method": a file written from it means it
    store, out, _ = _import(tmp_path, make_config, {"completeness_threshold": 0.9, "distribution_constraints": {
        "comparion_method": "Simple", "comparison_threshold": 0.2}})
    result, _ = _drift_after_import(store, make_config)
    assert result["features"]["x"]["method"] == "linf_cdf_simple"
    # what driftline does not act on is named, not refused and not silently dropped
    assert "not used by driftline: monitoring_config.completeness_threshold" in out["summary"]
    with pytest.raises(BaselineError, match="both 'comparison_method' \\('Robust'\\) and its misspelling"):
        _import(tmp_path, make_config, {"distribution_constraints": {"comparison_method": "Robust",
                                                                     "comparion_method": "Simple"}}, "both.json")


@pytest.mark.parametrize("monitoring_config, field, value, accepted", [
    ({"distribution_constraints": {"comparison_method": "linf_cdf_robust_x"}},
     "monitoring_config.distribution_constraints.comparison_method", "'linf_cdf_robust_x'",
     "Robust, Simple, linf_robust, linf_simple"),
    ({"distribution_constraints": {"comparison_method": "KS"}},
     "monitoring_config.distribution_constraints.comparison_method", "'KS'", "Robust, Simple, linf_robust, linf_simple"),
    ({"distribution_constraints": {"categorical_drift_method": "JensenShannon"}},
     "monitoring_config.distribution_constraints.categorical_drift_method", "'JensenShannon'", "LInfinity, ChiSquared"),
    ({"distribution_constraints": {"perform_comparison": True}},
     "monitoring_config.distribution_constraints.perform_comparison", "True", "Enabled, Disabled"),
    ({"emit_metrics": "on"}, "monitoring_config.emit_metrics", "'on'", "Enabled, Disabled"),
    ({"distribution_constraints": {"comparison_threshold": 1.5}},
     "monitoring_config.distribution_constraints.comparison_threshold", "1.5", "outside \\[0, 1\\]"),
    ({"distribution_constraints": {"categorical_comparison_threshold": "a lot"}},
     "monitoring_config.distribution_constraints.categorical_comparison_threshold", "'a lot'", "is not a number"),
    ({"datatype_check_threshold": -0.1}, "monitoring_config.datatype_check_threshold", "-0.1", "outside \\[0, 1\\]"),
])
def test_an_undocumented_spelling_is_refused_at_import(tmp_path, make_config, monitoring_config, field, value,
                                                      accepted):
    with pytest.raises(BaselineError) as err:
        _import(tmp_path, make_config, monitoring_config)
    msg = str(err.value)
    assert msg.startswith(f"file://{tmp_path}/constraints.json: {field}: {value} ")
    import re

    assert re.search(accepted, msg), msg
    assert baselines.list_versions(Store(f"file://{tmp_path}/store"), "m") == []  # nothing half-imported


def test_a_stored_baseline_with_an_unknown_method_fails_drift_with_file_and_value(tmp_path, make_config):
    """A version imported before import checked its settings: the drift stage names the
    stored constraints.json and the value instead of a KeyError deep in the engine."""
    store, _, _ = _import(tmp_path, make_config, {"distribution_constraints": {"comparison_method": "Robust"}})
    doc = store.read_json("baselines/m/v1/constraints.json")
    doc["monitoring_config"]["distribution_constraints"]["comparison_method"] = "linf_cdf_linf_robust"
    store.write_json("baselines/m/v1/constraints.json", doc)
    with pytest.raises(BaselineError, match=(f"^file://{tmp_path}/store/baselines/m/v1/constraints.json: "
                                             "monitoring_config.distribution_constraints.comparison_method: "
                                             "'linf_cdf_linf_robust' is not one of Robust, Simple")):
        _drift_after_import(store, make_config)
