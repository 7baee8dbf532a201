"""Bias metrics on small fixed data, every value computed by hand here, with Clarify's signs."""
import numpy as np
import pytest

from driftline.stats.bias import bias_metrics, compare_bias

# 10 rows: the first 4 are in the protected facet d, the other 6 in a.
IN_D = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
TRUE = [1, 0, 0, 0, 1, 1, 1, 0, 0, 1]
PRED = [1, 1, 0, 0, 1, 1, 0, 1, 0, 1]


def test_every_metric_by_hand():
    r = bias_metrics(IN_D, PRED, TRUE)
    m = r["metrics"]
    assert (r["n_a"], r["n_d"]) == (6, 4)
    assert m["CI"] == pytest.approx((6 - 4) / 10)
    # observed positive proportions: a 4/6, d 1/4
    assert m["DPL"] == pytest.approx(4 / 6 - 1 / 4)
    # predicted positive proportions: a 4/6, d 2/4
    assert m["DPPL"] == pytest.approx(4 / 6 - 2 / 4)
    assert m["DI"] == pytest.approx((2 / 4) / (4 / 6))
    # conditional acceptance c = n(1)/n̂(1): a 4/4, d 1/2; DCA = c_a - c_d
    assert m["DCA"] == pytest.approx(1.0 - 0.5)
    # conditional rejection r = n(0)/n̂(0): a 2/2, d 3/2; DCR = r_d - r_a
    assert m["DCR"] == pytest.approx(1.5 - 1.0)
    # accuracy: a rows (1,1)(1,1)(1,0)(0,1)(0,0)(1,1) -> 4/6; d rows (1,1)(0,1)(0,0)(0,0) -> 3/4
    assert m["AD"] == pytest.approx(4 / 6 - 3 / 4)
    # recall: a TP 3 of 4 positives, d 1 of 1
    assert m["RD"] == pytest.approx(3 / 4 - 1.0)
    assert r["undefined"] == {}


def test_what_is_missing_is_said():
    only_pred = bias_metrics(IN_D, y_pred=PRED)
    assert only_pred["metrics"]["DPPL"] is not None and only_pred["metrics"]["DPL"] is None
    assert only_pred["undefined"]["AD"] == "no labels"
    only_labels = bias_metrics(np.array(IN_D, bool), y_true=TRUE)
    assert only_labels["metrics"]["DPL"] is not None and only_labels["undefined"]["DI"] == "no predictions"
    # a has no predicted positive: DI and DCA have a zero denominator
    zero = bias_metrics(IN_D, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], TRUE)
    assert zero["metrics"]["DI"] is None and "predicted positive proportion of a is zero" in zero["undefined"]["DI"]
    assert zero["metrics"]["DCA"] is None
    empty = bias_metrics([0, 0, 0], [1, 0, 1], [1, 1, 0])
    assert all(v is None for v in empty["metrics"].values()) and "into d" in empty["undefined"]["CI"]
    with pytest.raises(ValueError, match="y_pred must be 0/1"):
        bias_metrics(IN_D, [2] * 10)
    with pytest.raises(ValueError, match="y_true has 3 values, the facet 10"):
        bias_metrics(IN_D, PRED, [1, 0, 1])


def test_parity_gives_zero_and_di_one():
    r = bias_metrics([1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0])
    assert r["metrics"]["DPPL"] == 0 and r["metrics"]["DI"] == 1 and r["metrics"]["AD"] == 0


def test_compare_bias_rules():
    m = {"DPPL": 0.25, "DI": 0.7, "AD": None}
    out = compare_bias(m, {"DPPL": 0.05, "DI": 0.95},
                       {"DPPL": {"max_abs": 0.2, "max_change": 0.1}, "DI": {"min_di": 0.8}, "AD": {"max_abs": 0.1}})
    assert [(b["metric"], b["rule"]) for b in out] == [("DPPL", "max_abs"), ("DPPL", "max_change"), ("DI", "min_di")]
    # each sentence names the bound crossed: the upper end of the two-sided bands here ...
    assert out[0]["description"] == "DPPL +0.25 > upper bound +0.2 (allowed band ±0.2)"
    assert out[1]["description"] == "DPPL +0.25 > upper bound +0.15 (baseline +0.05 + 0.1; moved +0.2)"
    assert out[2]["description"] == "DI 0.7 < lower bound 0.8"
    # ... and the lower end when the value falls below it
    low = compare_bias({"DPPL": -0.25}, {"DPPL": 0.05}, {"DPPL": {"max_abs": 0.2, "max_change": 0.1}})
    assert [b["description"] for b in low] == ["DPPL -0.25 < lower bound -0.2 (allowed band ±0.2)",
                                               "DPPL -0.25 < lower bound -0.05 (baseline +0.05 - 0.1; moved -0.3)"]
    assert compare_bias(m, None, {"DPPL": {"max_change": 0.01}}) == []
    with pytest.raises(ValueError, match="unknown rule"):
        compare_bias(m, None, {"DPPL": {"max": 1}})


def test_bootstrap_standard_error_matches_the_analytic_one():
    """DPPL is a difference of two proportions: its standard error is
    sqrt(qa(1-qa)/na + qd(1-qd)/nd); the count bootstrap must agree."""
    from driftline.stats.bias import bootstrap_se

    rng = np.random.default_rng(3)
    d = rng.random(4000) < 0.1
    pred = np.where(d, rng.random(4000) < 0.3, rng.random(4000) < 0.5)
    qa, qd, na, nd = pred[~d].mean(), pred[d].mean(), (~d).sum(), d.sum()
    want = np.sqrt(qa * (1 - qa) / na + qd * (1 - qd) / nd)
    se = bootstrap_se(d, pred, seed=1)
    assert se["DPPL"] == pytest.approx(want, rel=0.15)
    assert se["CI"] > 0 and se["DI"] > 0


def test_changes_within_sampling_noise_are_not_breaches():
    from driftline.stats.bias import compare_bias

    rules = {"DI": {"max_change": 0.2}}
    # a 0.27 move with a standard error of 0.15 is noise (0.27 - 2 x 0.15 < 0.2) ...
    assert compare_bias({"DI": 1.07}, {"DI": 0.80}, rules, se={"DI": 0.15}) == []
    # ... with 0.02 it is not; the baseline's own noise counts too
    (b,) = compare_bias({"DI": 1.07}, {"DI": 0.80}, rules, se={"DI": 0.02})
    assert b["rule"] == "max_change"
    assert compare_bias({"DI": 1.07}, {"DI": 0.80}, rules, se={"DI": 0.02}, baseline_se={"DI": 0.1}) == []
