"""Each drift measure against an independent reference on fixed data: scipy where it has
the measure, a hand computation in the test otherwise."""
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline.stats import measures as drift


@pytest.fixture
def samples():
    rng = np.random.default_rng(123)
    return rng.normal(0, 1, 800), rng.normal(0.3, 1.2, 600)


def test_ks_matches_scipy_and_ignores_missing(samples):
    a, b = samples
    res = drift.ks(np.append(a, np.nan), b)
    ref = stats.ks_2samp(a, b)
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.drifted and res.method == "ks" and res.threshold == 0.05


def test_ks_same_distribution_not_flagged():
    rng = np.random.default_rng(5)
    assert not drift.ks(rng.normal(size=2000), rng.normal(size=2000)).drifted


def test_wasserstein_normed_by_reference_sd(samples):
    a, b = samples
    res = drift.wasserstein_normed(a, b)
    assert res.statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-12)
    # a pure shift of 0.5 sd moves the normed distance by exactly 0.5
    assert drift.wasserstein_normed(a, a + 0.5 * np.std(a)).statistic == pytest.approx(0.5, rel=1e-9)


def test_psi_by_hand():
    ref, cur = [50, 30, 20], [40, 30, 30]
    p, q = np.array(ref) / 100, np.array(cur) / 100
    by_hand = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q))
    res = drift.psi(ref, cur)
    assert res.statistic == pytest.approx(by_hand, rel=1e-12)  # 0.0628...
    assert not res.drifted
    # an empty bin is floored, not infinite
    assert math.isfinite(drift.psi([10, 0], [5, 5]).statistic)


def test_jensen_shannon_matches_scipy():
    ref, cur = [50, 30, 20, 0], [40, 30, 20, 10]
    res = drift.jensen_shannon(ref, cur)
    assert res.statistic == pytest.approx(jensenshannon(np.array(ref) / 100, np.array(cur) / 100), rel=1e-12)


def test_hellinger_by_hand():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    by_hand = math.sqrt(0.5 * sum((math.sqrt(a) - math.sqrt(b)) ** 2 for a, b in zip(p, q)))
    assert drift.hellinger([5, 3, 2], [2, 3, 5]).statistic == pytest.approx(by_hand, rel=1e-12)
    assert drift.hellinger([1, 0], [0, 1]).statistic == pytest.approx(1.0)
    assert drift.hellinger([3, 7], [30, 70]).statistic == pytest.approx(0.0, abs=1e-9)


def test_linf_by_hand():
    res = drift.linf([50, 30, 20], [35, 30, 35])
    assert res.statistic == pytest.approx(0.15) and res.drifted


def test_chi_square_matches_scipy_without_regrouping():
    ref, cur = {"a": 500, "b": 300, "c": 200}, {"a": 90, "b": 60, "c": 50}
    res = drift.chi_square(ref, cur)
    exp = np.array([0.5, 0.3, 0.2]) * 200
    want = stats.chisquare([90, 60, 50], exp)
    assert res.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(want.pvalue, rel=1e-12)


def test_chi_square_regroups_small_cells_and_unseen_categories():
    ref = {"a": 600, "b": 390, "c": 6, "d": 4}
    cur = {"a": 55, "b": 40, "c": 1, "d": 2, "new": 2}
    res = drift.chi_square(ref, cur)
    # by hand: +0.5 smoothing (an unseen category), shares, then c, d and new pooled (expected < 5)
    r = np.array([600, 390, 6, 4, 0]) + 0.5
    e = r / r.sum() * 100
    obs = [55, 40, 1 + 2 + 2]
    exp = [e[0], e[1], e[2] + e[3] + e[4]]
    want = stats.chisquare(obs, exp)
    assert res.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(want.pvalue, rel=1e-12)


def test_z_test_by_hand():
    res = drift.z_test_proportions(300, 1000, 380, 1000)
    p = 680 / 2000
    z = (0.38 - 0.30) / math.sqrt(p * (1 - p) * (2 / 1000))
    assert res.statistic == pytest.approx(z, rel=1e-12)
    assert res.pvalue == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), rel=1e-9)
    assert res.drifted


def test_quantile_bins_cover_everything():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=1000)
    edges = drift.quantile_edges(ref, bins=10)
    counts = drift.bin_counts(ref, edges)
    assert counts.sum() == 1000 and np.all(np.abs(counts - 100) <= 1)
    assert drift.bin_counts([-1e9, 1e9], edges)[[0, -1]].tolist() == [1.0, 1.0]


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no non-missing values"):
        drift.ks([np.nan], [1.0])
    with pytest.raises(ValueError, match="sum to zero"):
        drift.psi([0, 0], [1, 1])
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([1, 2], [1, 2, 3])


def test_sketch_ks_within_error_bound_of_exact():
    from driftline.stats.profile import NumericProfile, kll_rank_error

    rng = np.random.default_rng(9)
    for shift in (0.0, 0.1, 0.5):
        a, b = rng.normal(0, 1, 40_000), rng.normal(shift, 1, 30_000)
        exact = stats.ks_2samp(a, b).statistic
        res = drift.linf_cdf_sketch(NumericProfile().update(a), NumericProfile().update(b), method="Simple")
        assert abs(res.statistic - exact) <= 2 * kll_rank_error() + 1 / 1000, (shift, res.statistic, exact)


def test_sketch_robust_subtracts_ks_critical_value():
    from driftline.stats.profile import NumericProfile

    rng = np.random.default_rng(10)
    a, b = rng.normal(0, 1, 300), rng.normal(0, 1, 200)
    pa_, pb = NumericProfile().update(a), NumericProfile().update(b)
    simple = drift.linf_cdf_sketch(pa_, pb, method="Simple", threshold=0.1)
    robust = drift.linf_cdf_sketch(pa_, pb, method="Robust", threshold=0.1)
    crit = 1.3581 * math.sqrt((300 + 200) / (300 * 200))  # c(0.05) by hand
    assert drift.ks_critical_value(300, 200) == pytest.approx(crit, rel=1e-4)
    assert robust.statistic == pytest.approx(max(0.0, simple.statistic - drift.ks_critical_value(300, 200)))
    # same distribution, small samples: Simple calls the sampling noise drift, Robust does not
    assert simple.drifted and not robust.drifted
