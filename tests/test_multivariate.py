"""Multivariate drift: a correlation flip that no univariate measure sees, no false alarms on
fresh batches from the reference distribution, the in-sample bias that leave-chunk-out
calibration removes, serialisation, and messy input."""
import json

import numpy as np
import pandas as pd
import pytest

from driftline.stats.measures import chi_square, ks, wasserstein_normed
from driftline.stats.multivariate import (
    MIN_GINI,
    ReconstructionModel,
    _Columns,
    _Encoder,
    domain_classifier,
    fit_reconstruction,
)

NUM, CAT = ["a", "b", "c"], ["k"]


def sample(n: int, seed: int, rho: float = 0.8) -> pd.DataFrame:
    """a and b standard normal (a rescaled) with correlation rho, c exponential and k
    categorical, both independent. Every marginal is the same whatever rho."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho ** 2) * rng.normal(size=n)
    return pd.DataFrame({"a": 10 + 2 * a, "b": b, "c": rng.exponential(size=n),
                         "k": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])})


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sample(20_000, seed=1)


@pytest.fixture(scope="module")
def model(reference) -> ReconstructionModel:
    return fit_reconstruction(reference, NUM, CAT)


def test_correlation_flip_is_caught_by_both_methods_and_by_no_univariate_measure(reference, model):
    current = sample(2_000, seed=9, rho=-0.8)

    # Same marginals: KS at 5% flags a same-distribution feature 1 time in 20, so the seed is
    # fixed; these are the measures the drift engine runs per feature.
    for col in NUM:
        assert not ks(reference[col], current[col], alpha=0.05).drifted, col
        assert not wasserstein_normed(reference[col], current[col], threshold=0.1).drifted, col
    counts = lambda f: f["k"].value_counts().to_dict()  # noqa: E731
    assert not chi_square(counts(reference), counts(current), alpha=0.05).drifted

    pca = model.score(current)
    assert pca["drifted"] and pca["statistic"] > pca["threshold"]
    assert pca["pvalue"] < 1e-6
    assert pca["method"] == "pca_reconstruction" and pca["rows"] == 2_000

    clf = domain_classifier(reference, current, NUM, CAT)
    assert clf["drifted"] and clf["statistic"] > 0.75 and clf["pvalue"] < 1e-6
    assert clf["rows_reference"] == clf["rows_current"] == 2_000  # balanced to the smaller side
    assert {f["feature"] for f in clf["features"][:2]} == {"a", "b"}
    importances = [f["importance"] for f in clf["features"]]
    assert importances == sorted(importances, reverse=True)


def test_fresh_batches_from_the_reference_distribution_are_not_flagged(reference, model):
    flagged = [model.score(sample(1_000, seed=s))["drifted"] for s in range(100, 120)]
    assert sum(flagged) <= 1

    results = [domain_classifier(reference, sample(1_000, seed=s), NUM, CAT) for s in range(200, 205)]
    assert not any(r["drifted"] for r in results)
    assert all(r["statistic"] < 0.55 for r in results)


def test_score_reports_bounds_around_the_out_of_fit_error(model):
    res = model.score(sample(400, seed=7))
    half = model.z * model.sigma / np.sqrt(400)
    assert res["reference_error"] == model.mu
    assert res["threshold"] == pytest.approx(model.mu + half)
    assert res["lower_threshold"] == pytest.approx(model.mu - half)
    assert res["components"] == 2  # the (a, b) direction and one more, for 65% of the variance
    assert len(model.chunk_errors) == 10
    assert set(res) == {"method", "statistic", "threshold", "lower_threshold", "drifted", "pvalue", "rows",
                        "reference_error", "components"}


WIDE = [f"x{i}" for i in range(30)]


def wide(n: int, seed: int) -> pd.DataFrame:
    """30 columns driven by 3 latent factors plus noise."""
    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(0).normal(size=(3, 30))
    return pd.DataFrame(rng.normal(size=(n, 3)) @ loadings + rng.normal(size=(n, 30)), columns=WIDE)


def test_out_of_fit_error_exceeds_in_sample_error_and_describes_new_data():
    ref = wide(300, seed=1)
    m = fit_reconstruction(ref, WIDE, [])
    in_sample = m.errors(ref).mean()
    assert in_sample == pytest.approx(m.fit_error)
    # The bias NannyML's thresholds ignore: PCA fits its own rows better than new ones.
    assert m.mu > in_sample + 0.02

    fresh = m.errors(wide(20_000, seed=2)).mean()
    assert abs(fresh - m.mu) < abs(fresh - in_sample)

    # A bound around the in-sample error flags a batch from the reference distribution; ours does not.
    batch = m.errors(wide(3_000, seed=3))
    naive_upper = in_sample + 3 * m.errors(ref).std() / np.sqrt(len(batch))
    assert batch.mean() > naive_upper
    assert not m.score(wide(3_000, seed=3))["drifted"]


def test_round_trip_through_json_gives_identical_scores(model):
    d = json.loads(json.dumps(model.to_dict()))
    again = ReconstructionModel.from_dict(d)
    batch = sample(500, seed=11)
    batch.loc[::7, "k"] = None
    batch.loc[::5, "a"] = np.nan
    batch.loc[3, "k"] = "purple"
    assert again.score(batch) == model.score(batch)
    assert again.to_dict() == d
    with pytest.raises(ValueError, match="pca_reconstruction"):
        ReconstructionModel.from_dict({**d, "method": "other"})


def test_unseen_categories_and_missing_values_are_handled(reference, model):
    batch = sample(50, seed=12)
    batch["k"] = batch["k"].astype(object)
    row = batch.iloc[[0]].copy()

    unseen = row.assign(k="purple")
    known = row.assign(k="red")
    assert model.errors(unseen)[0] > model.errors(known)[0]

    # Missing numeric = the reference median; missing categorical is its own (unseen here) value.
    median = float(reference["b"].median())
    assert model.errors(row.assign(b=np.nan))[0] == pytest.approx(model.errors(row.assign(b=median))[0])
    assert np.isfinite(model.errors(row.assign(k=None))[0])

    batch.loc[::3, "k"] = None
    batch.loc[::4, "c"] = np.nan
    batch.loc[::5, "k"] = "purple"
    res = model.score(batch)
    assert np.isfinite(res["statistic"]) and res["rows"] == 50

    clf = domain_classifier(reference, pd.concat([batch] * 20, ignore_index=True), NUM, CAT)
    assert np.isfinite(clf["statistic"]) and clf["rows_current"] == 1_000


def test_a_new_category_is_caught_by_the_domain_classifier_and_blamed_on_its_column(reference):
    current = sample(2_000, seed=13)
    current.loc[current.sample(frac=0.3, random_state=0).index, "k"] = "purple"
    res = domain_classifier(reference, current, NUM, CAT)
    assert res["drifted"] and res["features"][0]["feature"] == "k"


def test_missing_column_and_empty_batch_are_refused_with_the_column_named(reference, model):
    with pytest.raises(ValueError, match="'b'"):
        model.score(sample(10, seed=1).drop(columns=["b"]))
    with pytest.raises(ValueError, match="zero rows"):
        model.score(sample(10, seed=1).iloc[:0])
    with pytest.raises(ValueError, match="current: missing column.*'k'"):
        domain_classifier(reference, sample(10, seed=1).drop(columns=["k"]), NUM, CAT)
    with pytest.raises(ValueError, match="reference: missing column.*'zz'"):
        fit_reconstruction(reference, [*NUM, "zz"], CAT)
    with pytest.raises(ValueError, match="variance"):
        fit_reconstruction(reference, NUM, CAT, variance=1.0)


def test_each_categorical_column_gets_unit_total_variance():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "wide": rng.choice([f"v{i}" for i in range(30)], size=5_000),  # 20 kept + "other"
        "binary": rng.choice(["y", "n"], size=5_000, p=[0.7, 0.3]),
        "rare": rng.choice(["y", "n", None], size=5_000, p=[0.98, 0.01, 0.01]),
    })
    enc = _Encoder.fit(_Columns.of(frame, [], list(frame)), [], list(frame))
    x = enc.transform(_Columns.of(frame, [], list(frame)))
    assert len(enc.categories[0]) == 20 and None in enc.categories[2]
    widths = [len(c) + 1 for c in enc.categories]
    blocks = np.split(x, np.cumsum(widths)[:-1], axis=1)
    assert blocks[0].var(axis=0).sum() == pytest.approx(1.0)
    assert blocks[1].var(axis=0).sum() == pytest.approx(1.0)
    # A near-constant column is floored, not blown up.
    shares = frame["rare"].value_counts(normalize=True, dropna=False).to_numpy()
    gini = 1 - np.sum(shares ** 2)
    assert gini < MIN_GINI
    assert blocks[2].var(axis=0).sum() == pytest.approx(gini / MIN_GINI)


def test_numeric_only_shift_is_blamed_on_the_shifted_column():
    ref, cur = wide(3_000, seed=4), wide(1_000, seed=5)
    cur["x7"] += 1.0
    res = domain_classifier(ref, cur, WIDE, [])
    assert res["drifted"] and res["features"][0]["feature"] == "x7"


def test_integer_categories_match_across_int_float_and_str():
    ref = pd.DataFrame({"k": np.tile([1, 2, 3], 100), "v": np.arange(300.0)})
    m = fit_reconstruction(ref, ["v"], ["k"])
    as_float = pd.DataFrame({"k": [1.0, 2.0, np.nan], "v": [1.0, 2.0, 3.0]})
    as_str = pd.DataFrame({"k": ["1", "2", None], "v": [1.0, 2.0, 3.0]})
    assert m.errors(as_float).tolist() == m.errors(as_str).tolist()
    assert m.errors(as_float)[0] < m.errors(as_float.assign(k=7.0))[0]


def test_drift_below_the_lower_bound_is_worded_with_the_lower_bound(reference, model):
    """A batch that the PCA reconstructs *too* well (b exactly on a's line: a feed stuck on
    derived values) is drift below the lower bound; its violation names that bound, not the
    upper one. The opposite case (the correlation flip) names the upper bound."""
    from driftline.stages.drift import findings, violations

    regular = sample(2_000, seed=11)
    regular["b"] = 0.8 * (regular["a"] - 10) / 2  # on the reference's regression line, no noise
    res = model.score(regular)
    n = len(regular)
    lower = model.mu - model.z * model.sigma / np.sqrt(n)  # the bound, by hand
    upper = model.mu + model.z * model.sigma / np.sqrt(n)
    err = model.errors(regular).mean()
    assert res["drifted"] and err < lower and res["statistic"] == pytest.approx(err)
    result = {"multivariate": {"checked": True, "pca_reconstruction": res}}
    [v] = violations(result)
    assert v["details"]["crossed"] == "lower"
    assert f"mean reconstruction error {err:.3g} < lower bound {lower:.3g}" in v["description"]
    assert "upper bound" not in v["description"] and f"{upper:.3g}" not in v["description"]
    assert findings(result)[0].startswith(f"multivariate pca_reconstruction: mean reconstruction error {err:.3g} "
                                          f"< lower bound {lower:.3g}")

    flipped = model.score(sample(n, seed=9, rho=-0.8))
    [v] = violations({"multivariate": {"checked": True, "pca_reconstruction": flipped}})
    assert v["details"]["crossed"] == "upper"
    assert f"{flipped['statistic']:.3g} > upper bound {upper:.3g}" in v["description"]
    assert "lower bound" not in v["description"]


def test_domain_classifier_wording_names_its_one_bound(reference):
    from driftline.stages.drift import violations

    res = domain_classifier(reference, sample(2_000, seed=9, rho=-0.8), NUM, CAT)
    [v] = violations({"multivariate": {"checked": True, "domain_classifier": res}})
    assert v["description"].startswith(f"Multivariate drift (domain_classifier): AUC {res['statistic']:.3g} "
                                       f">= upper bound {res['threshold']:.3g} (p-value ")
