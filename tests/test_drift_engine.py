"""The drift engine: method choice, profile-based measures against scipy, multiple testing,
SageMaker baselines, attribution and the Python/CLI entry points."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftline.config import DriftSettings, FeatureDrift
from driftline.stages.drift import (
    Reference,
    check_column,
    choose_method,
    compare,
    detect_drift,
    holm,
    ks_weighted,
    reference_from_source,
    specs_from,
    wasserstein_score,
)
from driftline.stats.profile import NumericProfile, profile_table

KINDS = {"x": "numeric", "n": "integer", "few": "integer", "cat": "categorical", "flag": "boolean"}


def make(n: int, seed: int, *, shift: float = 0.0, cat_move: float = 0.0, flag_p: float = 0.3,
         missing: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10 + shift, 2, n)
    x[rng.random(n) < missing] = np.nan
    p = np.array([0.5, 0.3, 0.15, 0.05])
    p = p + np.array([-cat_move, cat_move, 0, 0])
    return pd.DataFrame({
        "x": x,
        "n": rng.poisson(8, n),
        "few": rng.integers(0, 3, n).astype("float64"),  # 3 distinct values: judged as categories
        "cat": rng.choice(["a", "b", "c", "d"], n, p=p),
        "flag": rng.random(n) < flag_p,
    })


def reference(n: int = 20_000, seed: int = 1) -> Reference:
    return reference_from_source(make(n, seed), KINDS)


def current_profile(ref: Reference, df: pd.DataFrame):
    return profile_table(__import__("pyarrow").Table.from_pandas(df, preserve_index=False),
                         specs_from(ref.profile, list(ref.kinds)))


def run(ref: Reference, df: pd.DataFrame, settings: DriftSettings | None = None, **kw) -> dict:
    settings = settings or DriftSettings(multivariate=False)
    frame = df if len(df) <= settings.small_sample else None
    return compare(ref, current_profile(ref, df), settings, current_frame=frame, **kw)


# -- method choice -------------------------------------------------------------------
def test_auto_methods_by_type_and_size():
    ref = reference()
    big, small = run(ref, make(50_000, 2)), run(ref, make(400, 3))
    assert {f: big["features"][f]["method"] for f in KINDS} == {
        "x": "wasserstein", "n": "wasserstein", "few": "jensen_shannon", "cat": "jensen_shannon",
        "flag": "jensen_shannon"}
    assert {f: small["features"][f]["method"] for f in KINDS} == {
        "x": "ks", "n": "ks", "few": "chi_square", "cat": "chi_square", "flag": "z_test"}


def test_no_drift_on_large_samples_of_the_same_distribution():
    """A million-row batch is not flagged for sampling noise (a KS test would be)."""
    ref = reference(200_000)
    out = run(ref, make(1_000_000, 5))
    assert out["dataset"]["drifted_features"] == [], out["summary"]
    assert max(r["statistic"] for r in out["features"].values()) < 0.05


@pytest.mark.parametrize("seed", range(4))
def test_no_drift_on_small_clean_batches(seed):
    ref = reference()
    out = run(ref, make(300, 100 + seed))
    assert out["dataset"]["drifted_features"] == [], out["summary"]


def test_real_shifts_are_flagged_large_and_small():
    ref = reference()
    big = run(ref, make(50_000, 7, shift=0.6, cat_move=0.2, flag_p=0.45))
    assert set(big["dataset"]["drifted_features"]) == {"x", "cat", "flag"}, big["summary"]
    small = run(ref, make(800, 8, shift=1.0, cat_move=0.25, flag_p=0.5))
    assert set(small["dataset"]["drifted_features"]) == {"x", "cat", "flag"}, small["summary"]
    assert small["features"]["x"]["pvalue"] < 1e-6


def test_missing_share_is_a_signal_of_its_own():
    ref = reference()
    out = run(ref, make(50_000, 9, missing=0.15))
    x = out["features"]["x"]
    assert not x["distribution_drifted"] and x["missing"]["drifted"] and x["drifted"]
    assert x["missing"]["current_share"] == pytest.approx(0.15, abs=0.01)
    assert out["dataset"]["drifted_features"] == ["x"]


def test_overrides_and_model_wide_defaults():
    ref = reference()
    df = make(50_000, 4)
    out = compare(ref, current_profile(ref, df), DriftSettings(multivariate=False, categorical_method="chi_square"),
                  overrides={"x": FeatureDrift(method="psi", threshold=0.05), "n": FeatureDrift(enabled=False)})
    assert out["features"]["x"]["method"] == "psi" and out["features"]["x"]["threshold"] == 0.05
    assert out["features"]["x"]["why"] == "set in the model file"
    assert out["features"]["n"]["checked"] is False and "n" not in out["dataset"]["drifted_features"]
    assert out["features"]["cat"]["method"] == "chi_square"
    assert out["dataset"]["features"] == 4


def test_choice_honours_sagemaker_distribution_constraints():
    dist = {"perform_comparison": "Enabled", "comparison_threshold": 0.2, "comparison_method": "Simple",
            "categorical_comparison_threshold": 0.15, "categorical_drift_method": "LInfinity"}
    s = DriftSettings()
    num = choose_method(categorical=False, binary=False, low_cardinality=False, n=10**6, settings=s, distribution=dist)
    cat = choose_method(categorical=True, binary=False, low_cardinality=False, n=10**6, settings=s, distribution=dist)
    assert (num.method, num.threshold) == ("linf_cdf_simple", 0.2)
    assert (cat.method, cat.threshold) == ("linf", 0.15)
    chi = choose_method(categorical=True, binary=False, low_cardinality=False, n=10, settings=s,
                        distribution={**dist, "categorical_drift_method": "ChiSquared"})
    assert chi.method == "chi_square"
    # the model file still wins
    own = choose_method(categorical=False, binary=False, low_cardinality=False, n=10, settings=s, distribution=dist,
                        override=FeatureDrift(method="wasserstein"))
    assert own.method == "wasserstein"



def test_sagemaker_spellings_map_to_methods_and_the_rest_is_a_clear_error():
    from driftline.stages.drift import sagemaker_distribution

    got = sagemaker_distribution({"comparison_method": " linf_Simple ", "categorical_drift_method": "chiSQUARED",
                                  "perform_comparison": "ENABLED", "comparison_threshold": "0.2", "extra": 1})
    assert got == {"perform_comparison": True, "numeric_method": "linf_cdf_simple", "comparison_threshold": 0.2,
                   "categorical_method": "chi_square", "categorical_comparison_threshold": 0.2, "unused": ["extra"]}
    # SageMaker's defaults; a null is an absent value
    assert sagemaker_distribution({"comparison_method": None}) == {
        "perform_comparison": True, "numeric_method": "linf_cdf_robust", "comparison_threshold": 0.1,
        "categorical_method": "linf", "categorical_comparison_threshold": 0.1, "unused": []}
    with pytest.raises(ValueError, match=r"^monitoring_config.distribution_constraints.comparison_method: "
                                         r"'linf_cdf_linf_robust' is not one of Robust, Simple, linf_robust, "
                                         r"linf_simple \(any case\)$"):
        sagemaker_distribution({"comparison_method": "linf_cdf_linf_robust"})
    # a Reference built by hand with a bad value fails the same way in the drift run, not with a KeyError
    ref = reference()
    ref.distribution = {"comparison_method": "linf_cdf_linf_robust"}
    with pytest.raises(ValueError, match="comparison_method: 'linf_cdf_linf_robust' is not one of"):
        compare(ref, current_profile(ref, make(2000, 5)), DriftSettings(multivariate=False))

# -- measures on profiles vs scipy -------------------------------------------------------------
def test_sketch_wasserstein_and_ks_against_scipy():
    rng = np.random.default_rng(11)
    a, b = rng.lognormal(1, 0.75, 300_000), rng.lognormal(1.1, 0.75, 200_000)
    pa_, pb = NumericProfile().update(a), NumericProfile().update(b)
    exact_w = stats.wasserstein_distance(a, b) / a.std()
    # The sketches' weighted items stand for the data within the KLL rank error; on this
    # heavy-tailed pair the normed distance lands within 0.03 sd of scipy's (threshold: 0.1).
    assert wasserstein_score(pa_, pb) == pytest.approx(exact_w, abs=0.03)
    same = NumericProfile().update(rng.lognormal(1, 0.75, 200_000))
    assert wasserstein_score(pa_, same) < 0.04
    exact = stats.ks_2samp(a, b)
    d = ks_weighted(pa_.weighted_items(), pb.weighted_items(), a.size, b.size, 0.05)
    eps = 2 * pa_.sketch.normalized_rank_error(False)
    assert abs(d.statistic - exact.statistic) <= eps
    # with raw values (weight 1) it is the exact statistic, and scipy's asymptotic p-value
    small_a, small_b = a[:700], b[:500]
    raw = ks_weighted((small_a, np.ones(700)), (small_b, np.ones(500)), 700, 500, 0.05)
    ref = stats.ks_2samp(small_a, small_b, method="asymp")
    assert raw.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert raw.pvalue == pytest.approx(ref.pvalue, rel=1e-6)


def test_small_batch_ks_is_exact_on_the_reference_sample():
    ref = reference()
    df = make(500, 12, shift=0.3)
    out = run(ref, df)
    want = stats.ks_2samp(ref.sample["x"].dropna(), df["x"].dropna())
    assert out["features"]["x"]["statistic"] == pytest.approx(want.statistic, abs=1e-12)
    assert out["features"]["x"]["pvalue"] == pytest.approx(want.pvalue, rel=1e-9)


def test_holm_adjustment_by_hand():
    # p sorted: 0.01 (x4=0.04), 0.02 (x3=0.06), 0.03 (x2=0.06 -> max 0.06), 0.2 (x1=0.2)
    assert holm([0.03, 0.2, 0.01, 0.02]) == pytest.approx([0.06, 0.2, 0.04, 0.06])
    assert holm([0.9, 0.9]) == pytest.approx([1.0, 1.0])


def test_low_cardinality_numbers_are_compared_value_by_value():
    ref = reference()
    edges = ref.profile.columns["few"].edges
    np.testing.assert_array_equal(edges, [-np.inf, 0, 1, 2, np.inf])
    df = make(50_000, 13)
    df["few"] = np.where(df["few"] == 0, 1.0, df["few"])  # value 0 disappears
    out = run(ref, df)
    assert out["features"]["few"]["method"] == "jensen_shannon" and out["features"]["few"]["drifted"]


# -- attribution -----------------------------------------------------------------------------
def test_attribution_weights_drift_by_importance():
    ref = reference()
    df = make(50_000, 14, shift=0.6, cat_move=0.2)
    ref.importance, ref.importance_source = {"x": 0.01, "n": 0.2, "few": 0.1, "cat": 0.5, "flag": 0.19}, "model file"
    out = run(ref, df)
    assert [r["feature"] for r in out["attribution"][:2]] == ["cat", "x"]
    lead = out["attribution"][0]
    assert lead["importance_rank"] == 1 and lead["share"] > 0.5
    assert sum(r["share"] for r in out["attribution"]) == pytest.approx(1.0)
    assert out["summary"].startswith("2 of 5 features drifted; `cat` (importance rank 1) explains")
    ref.importance = {"x": 0.9, "n": 0.02, "few": 0.02, "cat": 0.01, "flag": 0.05}
    assert run(ref, df)["attribution"][0]["feature"] == "x"


def test_violations_use_sagemaker_wording():
    from driftline.stages.drift import violations

    ref = reference()
    out = run(ref, make(50_000, 15, shift=0.6, missing=0.2))
    v = violations(out)
    assert {(x["feature_name"], x["constraint_check_type"]) for x in v} == {("x", "baseline_drift_check")}
    descs = sorted(x["description"] for x in v)
    assert descs[0].startswith("Baseline drift distance: ") and " exceeds threshold: 0.1 (wasserstein)" in descs[0]
    assert descs[1].startswith("Missing-value share drifted: 20.")


def test_prediction_drift_is_reported_apart_from_features():
    df_ref = make(20_000, 1)
    df_ref["score"] = np.random.default_rng(2).beta(2, 5, len(df_ref))
    ref = reference_from_source(df_ref, {**KINDS, "score": "numeric"})
    ref.kinds.pop("score")
    ref.prediction_kinds = {"score": "numeric"}
    cur = make(50_000, 3)
    cur["score"] = np.random.default_rng(4).beta(3, 5, len(cur))
    prof = profile_table(__import__("pyarrow").Table.from_pandas(cur, preserve_index=False),
                         specs_from(ref.profile, [*KINDS, "score"]))
    out = compare(ref, prof, DriftSettings(multivariate=False))
    assert out["prediction"]["score"]["drifted"] and out["dataset"]["drifted_features"] == []
    assert "prediction drift on `score`" in out["summary"]


def test_correlation_only_change_is_caught_only_by_multivariate():
    rng = np.random.default_rng(21)

    def frame(n, rho, seed):
        r = np.random.default_rng(seed)
        z = r.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
        return pd.DataFrame({"a": z[:, 0], "b": z[:, 1], "c": r.normal(size=n), "k": r.choice(["u", "v", "w"], n)})

    kinds = {"a": "numeric", "b": "numeric", "c": "numeric", "k": "categorical"}
    ref_df = frame(20_000, 0.8, int(rng.integers(1e9)))
    ref = reference_from_source(ref_df, kinds)
    from driftline.stages.drift import model_frame
    from driftline.stats.multivariate import fit_reconstruction

    ref.multivariate = fit_reconstruction(model_frame(ref.sample, kinds), ["a", "b", "c"], ["k"]).to_dict()
    for df, expect in ((frame(3000, -0.8, 5), True), (frame(3000, 0.8, 6), False)):
        prof = profile_table(__import__("pyarrow").Table.from_pandas(df, preserve_index=False),
                             specs_from(ref.profile, list(kinds)))
        out = compare(ref, prof, DriftSettings(), current_sample=df)
        assert out["dataset"]["drifted_features"] == []
        mv = out["multivariate"]
        assert mv["pca_reconstruction"]["drifted"] is expect and mv["domain_classifier"]["drifted"] is expect
        assert mv["drifted"] is expect


# -- outside Airflow ---------------------------------------------------------------------------
def test_detect_drift_from_files_and_the_cli(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.cli import main

    ref_df, cur_df = make(30_000, 31), make(30_000, 32, shift=0.8)
    pq.write_table(pa.Table.from_pandas(ref_df), tmp_path / "ref.parquet", row_group_size=4000)
    pq.write_table(pa.Table.from_pandas(cur_df), tmp_path / "cur.parquet", row_group_size=4000)
    cur_df.to_csv(tmp_path / "cur.csv", index=False)
    out = detect_drift(str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"))
    assert out["dataset"]["drifted_features"] == ["x"]
    assert out["features"]["n"]["type"] == "integer" and out["features"]["cat"]["type"] == "categorical"
    # the CLI: profile once, then compare; --workers splits the file across processes
    assert main(["profile", "--data", str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "p.json")]) == 0
    rc = main(["drift", "--baseline", str(tmp_path / "p.json"), "--current", str(tmp_path / "cur.parquet"),
               "--out", str(tmp_path / "d.json"), "--workers", "2", "--exclude", "flag"])
    doc = json.loads((tmp_path / "d.json").read_text())
    assert rc == 1 and doc["dataset"]["drifted_features"] == ["x"] and "flag" not in doc["features"]
    assert main(["drift", "--baseline", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.csv"),
                 "--features", "n,cat", "--out", str(tmp_path / "d2.json")]) == 0
    assert set(json.loads((tmp_path / "d2.json").read_text())["features"]) == {"n", "cat"}
    assert main(["drift", "--baseline", str(tmp_path / "p.json"), "--current", str(tmp_path / "nope.parquet")]) == 2


def test_check_column_when_one_side_is_empty():
    ref = reference()
    df = make(100, 40)
    df["x"] = np.nan
    r = check_column("x", "numeric", ref.profile.columns["x"], current_profile(ref, df).columns["x"], DriftSettings())
    assert r["checked"] is False and r["missing"]["drifted"] and r["drifted"]
