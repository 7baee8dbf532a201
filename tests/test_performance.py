"""Model-quality metrics: realized metrics against scikit-learn computed here on fixed data (a
few by hand), the isotonic calibrator, CBPE and DLE estimates against realized values on
simulated monitoring scenarios, and the threshold rules."""
import json
import math
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from driftline.stats import performance as perf
from driftline.stats.metric_names import HIGHER_IS_BETTER, METRICS, PROBLEM_TYPES
from driftline.stats.performance import (
    Calibrator,
    LossEstimator,
    compare_to_baseline,
    estimate_metrics,
    realized_metrics,
)

BINARY, MULTI, REG = PROBLEM_TYPES


def _json_safe(obj) -> None:
    """Dumps without NaN and without numpy types (json.dumps refuses those)."""
    json.dumps(obj, allow_nan=False)


@pytest.fixture(scope="module")
def binary_data():
    rng = np.random.default_rng(42)
    proba = rng.random(400)
    y = (rng.random(400) < proba).astype(int)
    return y, proba


def test_metric_tables_agree():
    assert set(METRICS) == set(PROBLEM_TYPES)
    assert all(m in HIGHER_IS_BETTER for names in METRICS.values() for m in names)
    assert not HIGHER_IS_BETTER["log_loss"] and not HIGHER_IS_BETTER["rmse"] and HIGHER_IS_BETTER["r2"]


# ---------------------------------------------------------------------------------------------
# realized metrics

def test_binary_with_proba_matches_sklearn(binary_data):
    y, proba = binary_data
    pred = (proba >= 0.5).astype(int)
    res = realized_metrics(BINARY, y, None, proba)
    ref = {"accuracy": skm.accuracy_score(y, pred), "precision": skm.precision_score(y, pred),
           "recall": skm.recall_score(y, pred), "f1": skm.f1_score(y, pred),
           "roc_auc": skm.roc_auc_score(y, proba), "pr_auc": skm.average_precision_score(y, proba),
           "log_loss": skm.log_loss(y, proba)}
    assert list(res["metrics"]) == list(METRICS[BINARY])
    for name, value in ref.items():
        assert res["metrics"][name] == pytest.approx(value, abs=1e-12), name
        assert type(res["metrics"][name]) is float
    assert res["n"] == 400 and res["undefined"] == {}
    assert res["confusion_matrix"] == {"labels": [0, 1],
                                       "matrix": skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()}
    _json_safe(res)


def test_binary_threshold_sets_the_predicted_labels(binary_data):
    y, proba = binary_data
    emitted = np.ones_like(y)  # ignored when proba is given
    low, high = (realized_metrics(BINARY, y, emitted, proba, threshold=t) for t in (0.3, 0.7))
    for t, res in ((0.3, low), (0.7, high)):
        pred = (proba >= t).astype(int)
        assert res["metrics"]["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
        assert res["metrics"]["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
        assert res["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert low["metrics"]["recall"] > high["metrics"]["recall"]
    assert low["metrics"]["precision"] < high["metrics"]["precision"]
    # the ranking metrics do not depend on the threshold
    assert low["metrics"]["roc_auc"] == high["metrics"]["roc_auc"]


def test_binary_without_proba_uses_y_pred_and_booleans(binary_data):
    y, proba = binary_data
    pred = proba >= 0.6
    res = realized_metrics(BINARY, y.astype(bool), pred)
    assert res["metrics"]["f1"] == pytest.approx(skm.f1_score(y, pred.astype(int)), abs=1e-12)
    assert res["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pred.astype(int)), abs=1e-12)
    for name in ("roc_auc", "pr_auc", "log_loss"):
        assert res["metrics"][name] is None
        assert "proba" in res["undefined"][name]


def test_binary_by_hand():
    y = [1, 1, 0, 0, 1, 0]
    proba = [0.9, 0.4, 0.2, 0.6, 0.8, 0.1]  # predicted 1 0 0 1 1 0: TP 2, FN 1, FP 1, TN 2
    m = realized_metrics(BINARY, y, None, proba)["metrics"]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # 8 of the 9 (positive, negative) pairs are ranked right: only 0.4 < 0.6
    assert m["roc_auc"] == pytest.approx(8 / 9)
    # positives by rank 1 (0.9), 2 (0.8), 4 (0.4): AP = (1/1 + 2/2 + 3/4) / 3
    assert m["pr_auc"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.4, 0.8, 0.9])))


def test_binary_one_class_and_no_positive_predictions():
    y = np.zeros(50, dtype=int)
    proba = np.linspace(0.0, 0.45, 50)
    res = realized_metrics(BINARY, y, None, proba)
    for name in ("roc_auc", "pr_auc"):
        assert res["metrics"][name] is None and "one class" in res["undefined"][name]
    assert res["metrics"]["precision"] is None and "no positive predictions" in res["undefined"]["precision"]
    assert res["metrics"]["recall"] is None and res["metrics"]["f1"] is None
    assert res["metrics"]["accuracy"] == 1.0
    assert res["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=[0, 1]), abs=1e-12)
    # a probability of exactly 1 for a negative is clipped as sklearn does, not infinite
    clipped = realized_metrics(BINARY, [0, 1], None, [1.0, 1.0])["metrics"]["log_loss"]
    assert clipped == pytest.approx(skm.log_loss([0, 1], [1.0, 1.0], labels=[0, 1]))
    assert math.isfinite(clipped)
    _json_safe(res)


def test_binary_rejects_bad_labels_and_lengths():
    with pytest.raises(ValueError, match=r"y_true must hold 0/1.*\[2\]"):
        realized_metrics(BINARY, [0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="proba has 2 values, expected 3"):
        realized_metrics(BINARY, [0, 1, 1], None, [0.1, 0.2])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        realized_metrics(BINARY, [0, 1], None, [0.1, 1.2])
    with pytest.raises(ValueError, match="problem_type 'ranking'"):
        realized_metrics("ranking", [0], [0])


def test_multiclass_string_labels_match_sklearn():
    rng = np.random.default_rng(7)
    classes = np.array(["cat", "dog", "emu", "yak"])
    y = classes[rng.integers(0, 4, 300)]
    pred = np.where(rng.random(300) < 0.6, y, classes[rng.integers(0, 3, 300)])
    pred[pred == "yak"] = "cat"  # a class never predicted: its precision is 0/0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero_division=0: no UndefinedMetricWarning
        res = realized_metrics(MULTI, y, pred)
    m = res["metrics"]
    assert list(m) == list(METRICS[MULTI])
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    for avg in ("macro", "weighted"):
        assert m[f"precision_{avg}"] == pytest.approx(
            skm.precision_score(y, pred, average=avg, zero_division=0), abs=1e-12)
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg), abs=1e-12)
        assert m[f"f1_{avg}"] == pytest.approx(
            skm.f1_score(y, pred, average=avg, zero_division=0), abs=1e-12)
    cm = res["confusion_matrix"]
    assert cm["labels"] == ["cat", "dog", "emu", "yak"]
    assert cm["matrix"] == skm.confusion_matrix(y, pred, labels=classes).tolist()
    assert [row[-1] for row in cm["matrix"]] == [0, 0, 0, 0]
    _json_safe(res)


def test_multiclass_by_hand_with_int_labels():
    res = realized_metrics(MULTI, [0, 0, 1, 2], [0, 1, 1, 1])
    # per class precision 1, 1/3, 0 (never predicted); recall 1/2, 1, 0
    assert res["metrics"]["accuracy"] == 0.5
    assert res["metrics"]["precision_macro"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert res["metrics"]["recall_weighted"] == pytest.approx(0.5 * 0.5 + 0.25 * 1 + 0.25 * 0)
    assert res["confusion_matrix"] == {"labels": [0, 1, 2], "matrix": [[1, 1, 0], [0, 1, 0], [0, 1, 0]]}


def test_regression_matches_sklearn_and_edge_cases():
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, 500)
    pred = y + rng.normal(1, 4, 500)
    m = realized_metrics(REG, y, pred)["metrics"]
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), abs=1e-12)
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-12)
    hand = realized_metrics(REG, [1.0, 2.0, 4.0], [2.0, 2.0, 2.0])
    assert hand["metrics"]["mae"] == pytest.approx(1.0)
    assert hand["metrics"]["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert hand["metrics"]["mape"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert hand["metrics"]["r2"] == pytest.approx(1 - 5 / (14 / 3))
    assert hand["confusion_matrix"] is None
    constant = realized_metrics(REG, [3.0, 3.0], [2.0, 4.0])
    assert constant["metrics"]["r2"] is None and "constant" in constant["undefined"]["r2"]
    # y_true == 0: sklearn divides by machine epsilon -- huge but finite, as documented
    zero = realized_metrics(REG, [0.0, 1.0], [0.5, 1.0])["metrics"]["mape"]
    assert zero == pytest.approx(0.5 / np.finfo(float).eps / 2) and zero > 1e14
    with pytest.raises(ValueError, match="missing or infinite"):
        realized_metrics(REG, [1.0, np.nan], [1.0, 2.0])


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_empty_input_realized(problem_type):
    res = realized_metrics(problem_type, [], [], [] if problem_type == BINARY else None)
    assert res["n"] == 0
    assert res["metrics"] == dict.fromkeys(METRICS[problem_type])
    assert res["undefined"] == dict.fromkeys(METRICS[problem_type], "no labelled rows")
    _json_safe(res)


# ---------------------------------------------------------------------------------------------
# calibration

def test_calibrator_fixes_miscalibrated_scores():
    rng = np.random.default_rng(11)
    score = rng.random(20_000)
    y = (rng.random(20_000) < score ** 2).astype(int)  # the model says p, the truth is p**2
    cal = Calibrator(BINARY).fit(score, y)
    grid = np.linspace(0.05, 0.95, 19)
    err = np.abs(cal.predict(grid) - grid ** 2)
    assert err.max() < 0.05 and err.mean() < 0.02  # measured 0.034 and 0.011
    summary = cal.to_dict()["summary"]
    assert summary["ece_before"] == pytest.approx(1 / 6, abs=0.02)  # E[p - p**2]
    # out-of-fold: measured ECE 0.164 -> 0.003, Brier 0.167 -> 0.135
    assert summary["ece_after"] < 0.02 and summary["brier_after"] < summary["brier_before"]
    assert sum(b["n"] for b in summary["reliability_before"]) == 20_000
    # same function as sklearn's own predict
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(score, y)
    probe = np.r_[-0.0, rng.random(1000), 1.0]
    assert np.allclose(cal.predict(probe), iso.predict(probe), atol=1e-12)


def test_calibrator_round_trip_and_json():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.3, 1.0, 3000)
    correct = rng.random(3000) < conf ** 1.5
    cal = Calibrator(MULTI).fit(conf, correct)
    doc = json.loads(json.dumps(cal.to_dict(), allow_nan=False))
    back = Calibrator.from_dict(doc)
    probe = np.r_[0.0, 0.1, rng.random(500), 1.0]
    assert np.array_equal(back.predict(probe), cal.predict(probe))
    assert back.problem_type == MULTI and back.to_dict() == doc
    # outside the fitted range the prediction is clipped to the end values
    assert cal.predict([0.0])[0] == cal.predict([conf.min()])[0]


def test_calibrator_errors():
    with pytest.raises(ValueError, match="LossEstimator"):
        Calibrator(REG)
    with pytest.raises(ValueError, match="not fitted"):
        Calibrator(BINARY).predict([0.5])
    with pytest.raises(ValueError, match="target must hold 0/1"):
        Calibrator(BINARY).fit([0.1, 0.9], [0, 3])
    with pytest.raises(ValueError, match="non-decreasing"):
        Calibrator.from_dict({"method": "isotonic", "problem_type": BINARY, "x": [0.5, 0.1], "y": [0, 1]})


# ---------------------------------------------------------------------------------------------
# CBPE

def _calibrated(rng, n, a=0.6, b=0.8):
    """A calibrated binary model: p ~ Beta(a, b), y ~ Bernoulli(p)."""
    p = rng.beta(a, b, n)
    return p, (rng.random(n) < p).astype(int)


@pytest.fixture(scope="module")
def binary_calibrator():
    p, y = _calibrated(np.random.default_rng(1), 20_000)
    return Calibrator(BINARY).fit(p, y)


#: |estimate - realized| allowed on 5,000 rows (about 3-5 sd of the realized value's label noise);
#: measured 0.005-0.006 for accuracy, precision, recall, f1, roc_auc, 0.0105 for pr_auc, 0.009 for
#: log_loss; 0.004-0.012 on the shifted sample.
CBPE_TOL = 0.03


def test_cbpe_close_to_realized_on_calibrated_model(binary_calibrator):
    p, y = _calibrated(np.random.default_rng(7), 5000)
    est = estimate_metrics(BINARY, binary_calibrator, p)
    real = realized_metrics(BINARY, y, None, p)
    assert est["n"] == 5000 and est["method"] == "cbpe" and est["undefined"] == {}
    for name in METRICS[BINARY]:
        e = est["metrics"][name]
        assert e["value"] == pytest.approx(real["metrics"][name], abs=CBPE_TOL), name
        assert e["lower"] < e["value"] < e["upper"], name
    cm = np.array(est["confusion_matrix"]["matrix"])
    assert cm.sum() == pytest.approx(5000, abs=1e-6)
    # expected predicted-positive count is exact: the predictions are known
    assert cm[:, 1].sum() == pytest.approx((p >= 0.5).sum(), abs=1e-6)
    _json_safe(est)


def test_cbpe_point_estimates_equal_sklearn_on_label_weighted_rows():
    """CBPE's expected confusion matrix, expected ROC and PR curves and expected log loss are
    sklearn's metrics on every row taken twice: as a positive with weight c and as a negative
    with weight 1 - c. Scores are rounded so that ties occur."""
    rng = np.random.default_rng(5)
    p = np.round(rng.beta(1.2, 1.5, 800), 2)
    cal = Calibrator.from_dict({"method": "isotonic", "problem_type": BINARY,
                                "x": [0.0, 0.3, 0.6, 1.0], "y": [0.05, 0.2, 0.7, 0.9]})
    c = cal.predict(p)
    yy, ss, ww = np.r_[np.ones(800), np.zeros(800)], np.r_[p, p], np.r_[c, 1 - c]
    pred = (ss >= 0.4).astype(int)
    est = estimate_metrics(BINARY, cal, p, threshold=0.4, n_sim=0)
    m = {k: v["value"] for k, v in est["metrics"].items()}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(yy, pred, sample_weight=ww), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(yy, pred, sample_weight=ww), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(yy, pred, sample_weight=ww), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(yy, pred, sample_weight=ww), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(yy, ss, sample_weight=ww), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(yy, ss, sample_weight=ww), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(yy, ss, sample_weight=ww), abs=1e-12)
    assert np.allclose(est["confusion_matrix"]["matrix"],
                       skm.confusion_matrix(yy, pred, sample_weight=ww), atol=1e-9)
    assert est["metrics"]["accuracy"]["lower"] is None  # n_sim=0: no band


def test_cbpe_vectorised_simulation_matches_sklearn():
    """The batch metrics behind the band (rank-sum AUC with mid-ranks, step-wise AP) against
    sklearn, label vector by label vector, with tied scores."""
    rng = np.random.default_rng(9)
    p = np.round(rng.random(300), 1)
    y = (rng.random((25, 300)) < p).astype(float)
    y[0] = 0.0  # one vector with no positive: NaN where sklearn has no value
    batch = perf._BinaryBatch(p, 0.5)
    got = batch.metrics(y[:, batch.order])
    pred = (p >= 0.5).astype(int)
    assert np.isnan(got["roc_auc"][0]) and np.isnan(got["recall"][0]) and np.isnan(got["pr_auc"][0])
    for i in range(1, 25):
        yi = y[i].astype(int)
        ref = {"accuracy": skm.accuracy_score(yi, pred), "precision": skm.precision_score(yi, pred),
               "recall": skm.recall_score(yi, pred), "f1": skm.f1_score(yi, pred),
               "roc_auc": skm.roc_auc_score(yi, p), "pr_auc": skm.average_precision_score(yi, p),
               "log_loss": skm.log_loss(yi, p, labels=[0, 1])}
        for name, value in ref.items():
            assert got[name][i] == pytest.approx(value, abs=1e-10), (name, i)


def test_cbpe_band_covers_realized(binary_calibrator):
    covered = {"accuracy": 0, "roc_auc": 0}
    for seed in range(30):
        p, y = _calibrated(np.random.default_rng(100 + seed), 1500)
        est = estimate_metrics(BINARY, binary_calibrator, p, n_sim=300, seed=seed, band=0.9)
        real = realized_metrics(BINARY, y, None, p)["metrics"]
        for name in covered:
            covered[name] += est["metrics"][name]["lower"] <= real[name] <= est["metrics"][name]["upper"]
    assert covered["accuracy"] >= 24 and covered["roc_auc"] >= 24, covered  # measured 26 and 27 of 30


def test_cbpe_follows_a_shift_to_harder_cases(binary_calibrator):
    p0, y0 = _calibrated(np.random.default_rng(21), 5000)
    p1, y1 = _calibrated(np.random.default_rng(22), 5000, a=5, b=5)  # scores near 0.5, still calibrated
    est0, est1 = (estimate_metrics(BINARY, binary_calibrator, p, n_sim=100)["metrics"] for p in (p0, p1))
    real0, real1 = (realized_metrics(BINARY, y, None, p)["metrics"] for y, p in ((y0, p0), (y1, p1)))
    for name in ("accuracy", "roc_auc", "f1"):
        assert real1[name] < real0[name] - 0.08  # the shift really hurts: measured drops 0.11-0.20
        assert est1[name]["value"] < est0[name]["value"] - 0.08
        assert est1[name]["value"] == pytest.approx(real1[name], abs=CBPE_TOL)
        drop_est, drop_real = est0[name]["value"] - est1[name]["value"], real0[name] - real1[name]
        assert drop_est == pytest.approx(drop_real, abs=CBPE_TOL)


def test_cbpe_multiclass_accuracy():
    rng = np.random.default_rng(4)
    classes = np.array(["ant", "bee", "cow", "dog"])

    def scenario(n):
        probs = rng.dirichlet([0.8] * 4, n)  # the model's probabilities are the true ones
        y = classes[(probs.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)]
        return classes[probs.argmax(axis=1)], probs.max(axis=1), y

    pred, conf, y = scenario(20_000)
    cal = Calibrator(MULTI).fit(conf, pred == y)
    pred, conf, y = scenario(5000)
    est = estimate_metrics(MULTI, cal, conf)
    real = realized_metrics(MULTI, y, pred)["metrics"]["accuracy"]
    acc = est["metrics"]["accuracy"]
    assert acc["value"] == pytest.approx(real, abs=0.02)  # measured difference 0.0044
    assert acc["lower"] <= real <= acc["upper"]
    for name in METRICS[MULTI][1:]:
        assert est["metrics"][name]["value"] is None
        assert "full probability vector" in est["undefined"][name]
    assert est["confusion_matrix"] is None
    _json_safe(est)
    with pytest.raises(ValueError, match="1-D"):
        estimate_metrics(MULTI, cal, np.full((10, 4), 0.25))


def test_cbpe_edge_cases(binary_calibrator):
    empty = estimate_metrics(BINARY, binary_calibrator, [])
    assert empty["n"] == 0 and all(v["value"] is None for v in empty["metrics"].values())
    assert set(empty["undefined"]) == set(METRICS[BINARY])
    _json_safe(empty)
    nothing_positive = estimate_metrics(BINARY, binary_calibrator, [0.1, 0.2, 0.3], n_sim=50)
    assert nothing_positive["metrics"]["precision"]["value"] is None
    assert "no positive predictions" in nothing_positive["undefined"]["precision"]
    assert nothing_positive["metrics"]["recall"]["value"] == 0.0
    _json_safe(nothing_positive)
    with pytest.raises(ValueError, match="LossEstimator"):
        estimate_metrics(REG, binary_calibrator, [0.5])
    with pytest.raises(ValueError, match="fitted for binary_classification"):
        estimate_metrics(MULTI, binary_calibrator, [0.5])
    with pytest.raises(ValueError, match="band"):
        estimate_metrics(BINARY, binary_calibrator, [0.5], band=90)


def test_cbpe_is_seeded(binary_calibrator):
    p, _ = _calibrated(np.random.default_rng(3), 500)
    a, b, c = (estimate_metrics(BINARY, binary_calibrator, p, n_sim=100, seed=s) for s in (1, 1, 2))
    assert a == b and a != c


# ---------------------------------------------------------------------------------------------
# DLE

_OFFSET = {"a": 0.0, "b": 1.0, "c": -1.0}


def _regression(rng, n, shifted=False):
    """y = 2x + offset(k) + noise with sd 0.2 + 0.3x (heteroscedastic); the model is right
    except for a bias of 0.5 in category c. Shifted: x ~ 10 Beta(3, 1), more rows where the
    noise is large."""
    x = 10 * (rng.beta(3, 1, n) if shifted else rng.random(n))
    k = rng.choice(list(_OFFSET), n)
    mean = 2 * x + np.vectorize(_OFFSET.get)(k)
    y = mean + rng.normal(0, 0.2 + 0.3 * x)
    return pd.DataFrame({"x": x, "k": k}), mean + np.where(k == "c", 0.5, 0.0), y


@pytest.fixture(scope="module")
def loss_estimator():
    features, pred, y = _regression(np.random.default_rng(3), 5000)
    return LossEstimator(random_state=0).fit(features, pred, y)


#: relative |estimate - realized| / realized allowed; measured 0.4 % / 0.2 % (MAE / RMSE) on the
#: unshifted batch here, 0.1 % / 0.03 % on the shifted one, at most 4.5 % / 5.0 % over 20 unshifted
#: batches of 2,000 rows and 3.7 % / 3.4 % over 20 shifted ones.
DLE_REL_TOL = 0.10


def test_dle_follows_a_shift_to_noisy_rows(loss_estimator):
    results = {}
    for shifted in (False, True):
        features, pred, y = _regression(np.random.default_rng(50), 2000, shifted)
        est = loss_estimator.estimate(features, pred)
        real = realized_metrics(REG, y, pred)["metrics"]
        for name in ("mae", "rmse"):
            assert est["metrics"][name]["value"] == pytest.approx(real[name], rel=DLE_REL_TOL), (shifted, name)
        results[shifted] = (est, real)
    (est0, real0), (est1, real1) = results[False], results[True]
    for name in ("mae", "rmse"):
        assert real1[name] > 1.3 * real0[name]
        assert est1["metrics"][name]["value"] > 1.3 * est0["metrics"][name]["value"]
    assert est1["method"] == "dle" and est1["confusion_matrix"] is None
    assert est1["metrics"]["r2"]["value"] is None and set(est1["undefined"]) == {"r2", "mape"}
    _json_safe(est1)


def test_dle_band_covers_realized(loss_estimator):
    covered = {"mae": 0, "rmse": 0}
    for seed in range(20):
        features, pred, y = _regression(np.random.default_rng(200 + seed), 1000)
        est = loss_estimator.estimate(features, pred, n_sim=200, seed=seed)["metrics"]
        real = realized_metrics(REG, y, pred)["metrics"]
        for name in covered:
            covered[name] += est[name]["lower"] <= real[name] <= est[name]["upper"]
    # nominal 90 %: measured 18 (mae) and 19 (rmse) of 20; resampling rows alone covered ~50 %
    assert min(covered.values()) >= 14, covered


def test_dle_inputs_save_and_load(loss_estimator, tmp_path):
    features, pred, _ = _regression(np.random.default_rng(8), 300)
    est = loss_estimator.estimate(features, pred, seed=1)
    as_dict = loss_estimator.estimate({"x": features["x"].to_numpy(), "k": features["k"].to_numpy()},
                                      pred, seed=1)
    assert as_dict == est
    path = tmp_path / "dle.joblib"
    loss_estimator.save(path)
    assert LossEstimator.load(path).estimate(features, pred, seed=1) == est
    assert joblib.load(path).estimate(features, pred, seed=1) == est  # a plain joblib file
    # an unseen category and missing values are routed, not refused
    odd = features.head(3).assign(k=["zebra", None, "a"], x=[np.nan, 1.0, 2.0])
    assert all(math.isfinite(v) for v in np.concatenate(loss_estimator.predict_losses(odd, pred[:3])))
    # pandas nullable columns: a boolean fitted without missing values may have some later
    typed = pd.DataFrame({"b": [True, False] * 50, "i": pd.array([1, None] * 50, dtype="Int64"),
                          "s": pd.array(["u", None] * 50, dtype="string")})
    small = LossEstimator().fit(typed, np.arange(100.0), np.arange(100.0) + np.tile([1.0, -2.0], 50))
    assert small.columns_ == [("b", "numeric"), ("i", "numeric"), ("s", "categorical")]
    later = typed.assign(b=pd.array([True, None] * 50, dtype="boolean"))
    assert small.estimate(later, np.arange(100.0))["metrics"]["mae"]["value"] > 0
    empty = loss_estimator.estimate(features.head(0), pred[:0])
    assert empty["n"] == 0 and empty["metrics"]["mae"]["value"] is None
    with pytest.raises(ValueError, match=r"lack column\(s\) \['k'\]"):
        loss_estimator.estimate(features[["x"]], pred)
    with pytest.raises(ValueError, match="dates"):
        LossEstimator().fit(features.assign(t=pd.Timestamp("2026-01-01")), pred, pred)
    joblib.dump({"something": "else"}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a saved, fitted LossEstimator"):
        LossEstimator.load(tmp_path / "other.joblib")


# ---------------------------------------------------------------------------------------------
# thresholds

def test_compare_to_baseline_rules():
    metrics = {"accuracy": 0.712, "roc_auc": 0.90, "log_loss": 0.55, "rmse": 3.2, "f1": None, "r2": -0.3}
    baseline = {"accuracy": 0.801, "roc_auc": 0.91, "log_loss": 0.45, "rmse": 3.0, "f1": 0.7, "r2": -0.2}
    thresholds = {
        "accuracy": {"max_drop": 0.05, "min": 0.75},
        "roc_auc": {"max_drop": 0.05, "min": 0.85},      # 0.90 >= 0.91 * 0.95 = 0.8645: no breach
        "log_loss": {"max_drop": 0.2, "max": 0.6},       # 0.55 > 0.45 * 1.2 = 0.54
        "rmse": {"max": 3.2},                            # on the bound: no breach
        "f1": {"min": 0.9},                              # value None: skipped
        "r2": {"max_drop": 0.25},                        # -0.3 < -0.2 - 0.2 * 0.25 = -0.25
    }
    breaches = compare_to_baseline(metrics, baseline, thresholds)
    got = [(b["metric"], b["rule"]) for b in breaches]
    assert got == [("accuracy", "min"), ("accuracy", "max_drop"), ("log_loss", "max_drop"), ("r2", "max_drop")]
    by = {(b["metric"], b["rule"]): b for b in breaches}
    acc = by["accuracy", "max_drop"]
    assert acc["bound"] == pytest.approx(0.801 * 0.95) and acc["value"] == 0.712 and acc["baseline"] == 0.801
    assert acc["description"] == "accuracy 0.712 < 0.761 (baseline 0.801 - 5%)"
    assert by["accuracy", "min"]["description"] == "accuracy 0.712 < 0.750 (min)"
    assert by["log_loss", "max_drop"]["description"] == "log_loss 0.550 > 0.540 (baseline 0.450 + 20%)"
    assert by["r2", "max_drop"]["bound"] == pytest.approx(-0.25)
    json.dumps(breaches, allow_nan=False)


def test_compare_to_baseline_none_and_errors():
    # a missing baseline skips the relative rule only; absolute bounds still apply
    assert compare_to_baseline({"mae": 5.0}, {"mae": None}, {"mae": {"max_drop": 0.1}}) == []
    [b] = compare_to_baseline({"mae": 5.0}, {}, {"mae": {"max": 4.0, "max_drop": 0.1}})
    assert b["rule"] == "max" and b["baseline"] is None and b["description"] == "mae 5.000 > 4.000 (max)"
    assert compare_to_baseline({}, {"mae": 1.0}, {"mae": {"max": 0.0}}) == []
    assert compare_to_baseline({"mae": 2.0}, {"mae": 1.0}, {"mae": {"max": None, "max_drop": 1.5}}) == []
    with pytest.raises(ValueError, match="unknown rule"):
        compare_to_baseline({"mae": 1.0}, {"mae": 1.0}, {"mae": {"maximum": 2}})
    with pytest.raises(ValueError, match="higher is better"):
        compare_to_baseline({"gini": 0.1}, {"gini": 0.5}, {"gini": {"max_drop": 0.1}})
