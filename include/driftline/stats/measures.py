"""Drift measures: one function per measure, each returning a plain ``DriftResult``.

Numeric measures take two 1-D arrays of values (NaN = missing, ignored) or, for the binned
ones, two arrays of counts on the same bins. Categorical measures take two mappings of
category -> count. Every result names its method and carries the statistic, the threshold it
was held against, the verdict and, for tests, the p-value.

Effect-size distances (Wasserstein, PSI, Jensen-Shannon, Hellinger, L-infinity) get a
threshold on the statistic; hypothesis tests (Kolmogorov-Smirnov, chi-square, z-test) get a
significance level ``alpha`` and flag drift when ``pvalue < alpha``. Tests become
oversensitive on large samples: which family applies to which feature and sample size is
decided by the drift engine, not here.

References: scipy.stats.ks_2samp, scipy.stats.wasserstein_distance, scipy.stats.chisquare,
scipy.spatial.distance.jensenshannon; PSI as in Siddiqi (2006), "Credit Risk Scorecards".
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

#: Floor for empty bins in PSI (a zero share makes ln(p/q) infinite).
PSI_EPS = 1e-4


@dataclass(frozen=True)
class DriftResult:
    method: str
    statistic: float
    threshold: float
    drifted: bool
    pvalue: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(x) -> np.ndarray:
    a = np.asarray(x, dtype="float64").ravel()
    a = a[~np.isnan(a)]
    if a.size == 0:
        raise ValueError("no non-missing values to compare")
    return a


def _shares(counts) -> np.ndarray:
    c = np.asarray(counts, dtype="float64")
    if c.ndim != 1 or (c < 0).any():
        raise ValueError("counts must be a 1-D array of non-negative numbers")
    total = c.sum()
    if total <= 0:
        raise ValueError("counts sum to zero: nothing to compare")
    return c / total


def _aligned(reference: Mapping[str, float], current: Mapping[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts of both sides over the union of categories (absent = 0), in a stable order."""
    cats = sorted(set(reference) | set(current), key=str)
    return cats, np.array([reference.get(c, 0) for c in cats], float), np.array([current.get(c, 0) for c in cats], float)


# -- numeric, on values -------------------------------------------------------------------
def ks(reference, current, alpha: float = 0.05) -> DriftResult:
    """Two-sample Kolmogorov-Smirnov: D = sup |F_ref(x) - F_cur(x)|, exact/asymptotic p-value
    from scipy.stats.ks_2samp (method='auto')."""
    res = stats.ks_2samp(_clean(reference), _clean(current))
    return DriftResult("ks", float(res.statistic), alpha, bool(res.pvalue < alpha), float(res.pvalue))


def wasserstein_normed(reference, current, threshold: float = 0.1) -> DriftResult:
    """Earth mover's distance divided by the reference's standard deviation (so 0.1 means "the
    distribution moved by a tenth of a standard deviation"), as Evidently normalises it.
    A constant reference (sd 0) is compared on the raw distance."""
    ref, cur = _clean(reference), _clean(current)
    d = float(stats.wasserstein_distance(ref, cur))
    sd = float(np.std(ref))
    stat = d / sd if sd > 0 else d
    return DriftResult("wasserstein", stat, threshold, bool(stat >= threshold))


def quantile_edges(reference, bins: int = 10) -> np.ndarray:
    """Bin edges at the reference's quantiles (duplicates merged), open at both ends so
    current values outside the reference's range still land in the first/last bin."""
    ref = _clean(reference)
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def counts_on_edges(present: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of (non-missing) values per bin [e_i, e_{i+1}); values beyond the outer edges
    count in the first/last bin. Empty input gives zeros."""
    if np.isneginf(edges[0]) and np.isposinf(edges[-1]):
        if len(edges) <= 34:
            # #(x < e) per inner edge, then differences: [e_i, e_i+1) bins in a few vectorised
            # passes, 5x faster than np.histogram and 20x than a searchsorted per value
            below = [np.count_nonzero(present < e) for e in edges[1:-1]]
            return np.diff(np.array([0, *below, present.size], dtype="float64"))
        return np.histogram(present, bins=edges)[0].astype("float64")
    idx = np.clip(np.searchsorted(edges, present, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype("float64")


def counts_on_sorted(present: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """counts_on_edges for values already sorted ascending: one binary search per edge."""
    below = np.searchsorted(present, edges[1:-1], side="left")  # #(x < e) per inner edge
    return np.diff(np.concatenate([[0], below, [present.size]])).astype("float64")


def bin_counts(values, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of values (missing ignored; at least one must be present)."""
    return counts_on_edges(_clean(values), edges)


# -- on binned / categorical counts ------------------------------------------------------
def psi(reference_counts, current_counts, threshold: float = 0.2, eps: float = PSI_EPS) -> DriftResult:
    """Population Stability Index: sum_i (q_i - p_i) * ln(q_i / p_i), shares floored at eps.
    Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift."""
    p = np.maximum(_shares(reference_counts), eps)
    q = np.maximum(_shares(current_counts), eps)
    if p.shape != q.shape:
        raise ValueError("reference and current counts must be on the same bins")
    stat = float(np.sum((q - p) * np.log(q / p)))
    return DriftResult("psi", stat, threshold, bool(stat >= threshold))


def jensen_shannon(reference_counts, current_counts, threshold: float = 0.1) -> DriftResult:
    """Jensen-Shannon *distance* (the square root of the divergence), natural log, in [0, sqrt(ln 2)]."""
    p, q = _shares(reference_counts), _shares(current_counts)
    stat = float(jensenshannon(p, q))
    return DriftResult("jensen_shannon", stat, threshold, bool(stat >= threshold))


def hellinger(reference_counts, current_counts, threshold: float = 0.1) -> DriftResult:
    """Hellinger distance: sqrt(1 - sum_i sqrt(p_i q_i)), in [0, 1]."""
    p, q = _shares(reference_counts), _shares(current_counts)
    bc = float(np.sum(np.sqrt(p * q)))
    stat = float(np.sqrt(max(0.0, 1.0 - bc)))
    return DriftResult("hellinger", stat, threshold, bool(stat >= threshold))


def linf(reference_counts, current_counts, threshold: float = 0.1) -> DriftResult:
    """L-infinity distance between two frequency vectors: max_i |p_i - q_i| (SageMaker's
    categorical drift method)."""
    p, q = _shares(reference_counts), _shares(current_counts)
    stat = float(np.max(np.abs(p - q)))
    return DriftResult("linf", stat, threshold, bool(stat >= threshold))


def chi_square(reference: Mapping[str, float], current: Mapping[str, float], alpha: float = 0.05,
               min_expected: float = 5.0) -> DriftResult:
    """Pearson's chi-square goodness of fit of the current counts to the reference's shares.

    Regrouping, because the test's chi-square approximation needs every expected count to be
    at least ``min_expected``: cells below it are pooled into one. A category absent from
    the reference would have an expected count of zero (an infinite statistic), so when one
    occurs every reference count gets +0.5 (additive smoothing) before the shares are taken.
    """
    _, r, c = _aligned(reference, current)
    n_cur = c.sum()
    if r.sum() <= 0 or n_cur <= 0:
        raise ValueError("chi-square needs counts on both sides")
    if (r == 0).any():
        r = r + 0.5
    expected = r / r.sum() * n_cur
    small = expected < min_expected
    if small.any():
        obs = np.append(c[~small], c[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    else:
        obs = c
    if len(obs) < 2:
        return DriftResult("chi_square", 0.0, alpha, False, 1.0)
    res = stats.chisquare(obs, expected)
    return DriftResult("chi_square", float(res.statistic), alpha, bool(res.pvalue < alpha), float(res.pvalue))


def z_test_proportions(ref_successes: float, ref_n: float, cur_successes: float, cur_n: float,
                       alpha: float = 0.05) -> DriftResult:
    """Two-proportion z-test (pooled variance), two-sided, for binary features:
    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)), p = (x1 + x2) / (n1 + n2)."""
    if ref_n <= 0 or cur_n <= 0:
        raise ValueError("z-test needs observations on both sides")
    p1, p2 = ref_successes / ref_n, cur_successes / cur_n
    pooled = (ref_successes + cur_successes) / (ref_n + cur_n)
    se = np.sqrt(pooled * (1 - pooled) * (1 / ref_n + 1 / cur_n))
    if se == 0:
        return DriftResult("z_test", 0.0, alpha, False, 1.0)
    z = (p2 - p1) / se
    p = float(2 * stats.norm.sf(abs(z)))
    return DriftResult("z_test", float(z), alpha, bool(p < alpha), p)


# -- from sketches (no raw data) ------------------------------------------------------
def ks_critical_value(n: float, m: float, alpha: float = 0.05) -> float:
    """Asymptotic two-sample KS critical value: c(alpha) * sqrt((n + m) / (n m)),
    c(alpha) = sqrt(-ln(alpha / 2) / 2) (1.358 at alpha = 0.05)."""
    return float(np.sqrt(-np.log(alpha / 2) / 2) * np.sqrt((n + m) / (n * m)))


def linf_cdf_sketch(reference, current, method: str = "Robust", threshold: float = 0.1,
                    alpha: float = 0.05, grid: int = 1001) -> DriftResult:
    """L-infinity distance between the CDFs of two numeric profiles' KLL sketches, as
    SageMaker Model Monitor compares its baselines.

    ``Simple``: the distance D itself against ``threshold``. ``Robust``: D minus the KS
    critical value for the two sample sizes (floored at 0), so sampling noise alone does not
    count as drift on small samples. CDFs are evaluated at both sketches' quantiles on a grid
    of ``grid`` ranks; D is within twice the sketch's rank error (plus 1/grid) of the exact KS
    statistic of the raw data.
    """
    if method not in ("Simple", "Robust"):
        raise ValueError(f"method {method!r} is not Simple or Robust")
    if reference.present == 0 or current.present == 0:
        raise ValueError("no non-missing values to compare")
    ranks = np.linspace(0.0, 1.0, grid)
    points = np.unique(np.concatenate([reference.sketch.get_quantiles(ranks), current.sketch.get_quantiles(ranks)]))
    f_ref = np.array(reference.sketch.get_cdf(points))[:-1]
    f_cur = np.array(current.sketch.get_cdf(points))[:-1]
    d = float(np.max(np.abs(f_ref - f_cur)))
    if method == "Robust":
        d = max(0.0, d - ks_critical_value(reference.present, current.present, alpha))
    return DriftResult(f"linf_cdf_{method.lower()}", d, threshold, bool(d > threshold))
