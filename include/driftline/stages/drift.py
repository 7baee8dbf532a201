"""The drift engine: which measure judges which feature, and what the batch as a whole says.

Inputs are profiles (``driftline.stats.profile``): the baseline's, stored with its version, and
the batch's, merged from its partitions. The raw training data is never read again. Raw
rows are used only where they make a verdict better and are cheap: the baseline's
reference sample and a small batch's own rows (exact Kolmogorov-Smirnov), and samples of
both for the multivariate checks.

Default method choice (``method: auto``), by feature type and sample size
``n = min(present values in the baseline, present values in the batch)``:

==========================  =============================  ================================
feature                     n <= ``small_sample`` (1000)    n > ``small_sample``
==========================  =============================  ================================
numeric, > 5 distinct       Kolmogorov-Smirnov, p < 0.05    Wasserstein / baseline sd >= 0.1
binary (2 values)           two-proportion z-test, p<0.05   Jensen-Shannon distance >= 0.1
categorical, or numeric     chi-square (regrouped), p<0.05  Jensen-Shannon distance >= 0.1
with <= 5 distinct values
==========================  =============================  ================================

This is Evidently's rule (tests where samples are small and a p-value means something;
effect sizes with thresholds where any test would call a negligible shift significant),
decided on the smaller side rather than on the reference alone, since a 200-row batch
against a million-row baseline is a small-sample comparison. The missing-value share of
every feature is a signal of its own: a z-test on small batches, an absolute change of at
least ``missing_share`` (0.05) on large ones.

Overrides, strongest first: the feature's ``drift.method``/``drift.threshold`` in the model
file; a SageMaker baseline's ``monitoring_config.distribution_constraints`` (imported
baselines: L-infinity on the CDFs, Simple or Robust, and LInfinity or ChiSquared on
categories, with its thresholds, in every spelling SageMaker documents, see
``sagemaker_distribution``; ``perform_comparison: Disabled`` turns drift off); the
model's ``drift.numeric_method``/``categorical_method``; then the table above.

Feedback a baseline absorbed (``driftline.stages.baseline``, ``feedback.json``) acts under the model
file and over everything else: a **widened threshold** (a false positive) replaces the
threshold of the method the rules above chose -- only when they chose the method it was
widened for, and it never narrows: a distance threshold is the larger of the two, an alpha
the smaller -- and is recorded on the feature (``threshold_feedback``); a feature set
explicitly in the model file (``drift.method`` or ``drift.threshold``) keeps the model file's
choice. A feature whose reference **absorbed** intervals marked expected is compared with the
baseline's profile of it (those intervals' values) rather than with the raw training sample
(``reference_feedback`` on the feature); the multivariate checks keep the training rows.

The tests of one run (features and predictions) are a family: their p-values are adjusted
with Holm-Bonferroni
(``correction: holm``, the default), so a clean batch raises a false alarm on any feature
with probability at most ``alpha``, not ``1 - (1 - alpha)^features``. Each adjusted p-value is
compared with its own feature's alpha (``alpha`` unless the model file or feedback set one).

Dataset drift: at least ``drift_share`` (0.5) of the checked features drifted.
Attribution: each feature's drift score (its effect size in multiples of its default
threshold: normed Wasserstein / 0.1 for numbers, Jensen-Shannon / 0.1 for categories, the
change in missing share / 0.05) times its importance to the model (permutation importance
stored with the baseline, or ``features[i].importance``), as a share of the drifted
features' total.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from driftline.common.bounds import crossed, number, within
from driftline.config import DEFAULT_THRESHOLDS, TEST_METHODS, DriftSettings, FeatureDrift
from driftline.stats import measures as m
from driftline.stats.profile import (
    CategoricalProfile,
    ColumnProfile,
    ColumnSpec,
    DatasetProfile,
    NumericProfile,
    profile_table,
)

#: Numeric features with at most this many distinct baseline values are judged as categories.
LOW_CARDINALITY = 5
#: Feature types as the engine sees them: numbers or categories.
NUMERIC_TYPES = ("numeric", "integer")


# -- reference profiles ----------------------------------------------------------------
def edges_for(profile: NumericProfile, bins: int) -> np.ndarray | None:
    """Fixed bin edges from a baseline column's profile: every distinct value when there are
    at most ``bins`` of them (so each bin is one value), else its quantiles."""
    values, _ = profile.weighted_items()
    if values.size == 0:
        return None
    distinct = np.unique(values)
    if distinct.size <= bins:
        return np.concatenate([[-np.inf], distinct, [np.inf]])
    inner = np.unique(profile.sketch.get_quantiles(list(np.linspace(0, 1, bins + 1)[1:-1])))
    return np.concatenate([[-np.inf], inner, [np.inf]])


def reference_profile(table, kinds: Mapping[str, str], bins: int = 10) -> DatasetProfile:
    """Profile a reference (baseline) table or DataFrame: sketches first, then the numeric
    columns' counts on the edges they give. ``kinds`` maps column -> feature type."""
    return reference_from_source(table, kinds, bins=bins, sample_rows=0).profile


def specs_from(profile: DatasetProfile, columns: list[str] | None = None) -> dict[str, ColumnSpec]:
    """How to profile a batch so it compares with this reference: same kinds, same edges."""
    names = columns if columns is not None else list(profile.columns)
    return {c: ColumnSpec("numeric", profile.columns[c].edges) if isinstance(profile.columns[c], NumericProfile)
            else ColumnSpec("categorical") for c in names}


# -- what the engine needs from a baseline -------------------------------------------------
@dataclass
class Reference:
    profile: DatasetProfile
    #: Column -> feature type, for the features (not the prediction columns).
    kinds: dict[str, str]
    #: Prediction columns present in the profile (empty when the baseline has none).
    prediction_kinds: dict[str, str] = field(default_factory=dict)
    sample: pd.DataFrame | None = None
    importance: dict[str, float] | None = None
    importance_source: str = "none"
    multivariate: dict | None = None
    #: SageMaker monitoring_config.distribution_constraints (imported baselines only).
    distribution: dict | None = None
    version: str | None = None
    #: Distinct values of each numeric column seen by the baseline (capped), for the
    #: low-cardinality rule.
    distinct: dict[str, int] = field(default_factory=dict)
    #: Thresholds widened by false-positive feedback (baseline feedback.json): column ->
    #: {method, threshold, was, because: {...}}.
    widened: dict[str, dict] = field(default_factory=dict)
    #: Columns whose reference is the profile of intervals marked expected (baseline
    #: feedback.json): column -> {intervals, rows, answers}. Compared on the profile alone:
    #: the raw reference sample holds training rows, not them.
    absorbed: dict[str, dict] = field(default_factory=dict)


def distinct_counts(profile: DatasetProfile, cap: int = 1000) -> dict[str, int]:
    out = {}
    for c, p in profile.columns.items():
        if isinstance(p, NumericProfile):
            out[c] = min(int(np.unique(p.weighted_items()[0]).size), cap)
    return out


# -- method choice ---------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    method: str
    threshold: float
    why: str
    #: The threshold came from false-positive feedback the baseline absorbed.
    from_feedback: bool = False


# -- SageMaker's monitoring_config (constraints.json) ----------------------------------------
#: Every spelling SageMaker Model Monitor documents for the settings driftline acts on, matched
#: case-insensitively, with what each means here. comparison_method: the schema of the
#: constraints.json page says "Simple" | "Robust", its table ``linf_simple`` | ``linf_robust``
#: (both in use); categorical_drift_method: "LInfinity" | "ChiSquared" (the SageMaker Python
#: SDK checks the same two). driftline writes "Robust", "LInfinity", "Enabled".
SAGEMAKER_COMPARISON_METHODS = {"robust": "linf_cdf_robust", "simple": "linf_cdf_simple",
                                "linf_robust": "linf_cdf_robust", "linf_simple": "linf_cdf_simple"}
SAGEMAKER_CATEGORICAL_METHODS = {"linfinity": "linf", "chisquared": "chi_square"}
SAGEMAKER_SWITCHES = {"enabled": True, "disabled": False}
#: monitoring_config keys driftline reads (the others are listed as unused, never refused:
#: a newer SageMaker may add keys).
SAGEMAKER_CONFIG_KEYS = ("evaluate_constraints", "emit_metrics", "datatype_check_threshold",
                         "domain_content_threshold", "distribution_constraints")
SAGEMAKER_DISTRIBUTION_KEYS = ("perform_comparison", "comparison_threshold", "comparison_method",
                               "categorical_comparison_threshold", "categorical_drift_method")
#: An older version of SageMaker's constraints.json page spells the key "comparion_method";
#: a file written from it means comparison_method.
_KEY_ALIASES = {"comparion_method": "comparison_method"}


def _spelling(where: str, value: Any, accepted: dict[str, Any], shown: str) -> Any:
    if not isinstance(value, str) or value.strip().lower() not in accepted:
        raise ValueError(f"{where}: {value!r} is not one of {shown} (any case)")
    return accepted[value.strip().lower()]


def _share(where: str, value: Any) -> float:
    """A threshold in [0, 1] (a distance on CDFs or shares, a p-value or a share of values),
    given as a JSON number or numeric text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: {value!r} is not a number (a threshold between 0 and 1 is expected)")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a number (a threshold between 0 and 1 is expected)") from None
    if not 0.0 <= x <= 1.0:  # NaN fails too
        raise ValueError(f"{where}: {value!r} is outside [0, 1] (a threshold between 0 and 1 is expected)")
    return x


def _unaliased(doc: dict, where: str) -> dict:
    out = dict(doc)
    for alias, key in _KEY_ALIASES.items():
        if alias in out:
            value = out.pop(alias)
            if key in out and out[key] != value:
                raise ValueError(f"{where}: both {key!r} ({out[key]!r}) and its misspelling {alias!r} ({value!r}) "
                                 f"are set; keep one")
            out.setdefault(key, value)
    return out


def sagemaker_distribution(doc: dict | None, where: str = "monitoring_config.distribution_constraints") -> dict:
    """SageMaker's ``distribution_constraints`` checked and in driftline's terms:
    ``{"perform_comparison": bool, "numeric_method", "comparison_threshold",
    "categorical_method", "categorical_comparison_threshold", "unused": [keys]}``.

    Defaults are SageMaker's: Enabled, threshold 0.1, Robust, LInfinity; the categorical
    threshold defaults to ``comparison_threshold``. A null value is an absent one. Any other
    spelling raises ValueError naming the field, the value and the accepted values."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: {doc!r} is not an object")
    doc = {k: v for k, v in _unaliased(doc, where).items() if v is not None}
    threshold = _share(f"{where}.comparison_threshold", doc.get("comparison_threshold", 0.1))
    return {
        "perform_comparison": _spelling(f"{where}.perform_comparison", doc.get("perform_comparison", "Enabled"),
                                        SAGEMAKER_SWITCHES, "Enabled, Disabled"),
        "numeric_method": _spelling(f"{where}.comparison_method", doc.get("comparison_method", "Robust"),
                                    SAGEMAKER_COMPARISON_METHODS, "Robust, Simple, linf_robust, linf_simple"),
        "comparison_threshold": threshold,
        "categorical_method": _spelling(f"{where}.categorical_drift_method",
                                        doc.get("categorical_drift_method", "LInfinity"),
                                        SAGEMAKER_CATEGORICAL_METHODS, "LInfinity, ChiSquared"),
        "categorical_comparison_threshold": _share(f"{where}.categorical_comparison_threshold",
                                                   doc.get("categorical_comparison_threshold", threshold)),
        "unused": sorted(k for k in doc if k not in SAGEMAKER_DISTRIBUTION_KEYS),
    }


def sagemaker_monitoring_config(mc: dict | None) -> dict:
    """A constraints.json's ``monitoring_config`` checked (see ``sagemaker_distribution``):
    ``{"evaluate_constraints": bool, "emit_metrics": bool, "datatype_check_threshold": float |
    None, "domain_content_threshold": float | None, "distribution": {...}, "unused": [keys]}``
    (None: absent, the model file's threshold applies)."""
    if mc is None:
        mc = {}
    if not isinstance(mc, dict):
        raise ValueError(f"monitoring_config: {mc!r} is not an object")
    mc = {k: v for k, v in mc.items() if v is not None}
    dist = sagemaker_distribution(mc.get("distribution_constraints"))
    return {
        **{k: _spelling(f"monitoring_config.{k}", mc.get(k, "Enabled"), SAGEMAKER_SWITCHES, "Enabled, Disabled")
           for k in ("evaluate_constraints", "emit_metrics")},
        **{k: _share(f"monitoring_config.{k}", mc[k]) if k in mc else None
           for k in ("datatype_check_threshold", "domain_content_threshold")},
        "distribution": {k: v for k, v in dist.items() if k != "unused"},
        "unused": sorted([f"monitoring_config.{k}" for k in mc if k not in SAGEMAKER_CONFIG_KEYS]
                         + [f"monitoring_config.distribution_constraints.{k}" for k in dist["unused"]]),
    }


def _threshold(method: str, given: float | None, settings: DriftSettings) -> float:
    if given is not None:
        return float(given)
    if method in TEST_METHODS:
        return settings.alpha
    return float(settings.thresholds.get(method, DEFAULT_THRESHOLDS[method]))


def choose_method(*, categorical: bool, binary: bool, low_cardinality: bool, n: int, settings: DriftSettings,
                  override: FeatureDrift | None = None, distribution: dict | None = None,
                  widened: dict | None = None) -> Choice:
    """The documented choice (module docstring) for one feature. ``widened``: a threshold a
    baseline absorbed from false-positive feedback ({method, threshold}); it applies when the
    model file sets neither method nor threshold and the rules choose its method."""
    choice = _choose(categorical=categorical, binary=binary, low_cardinality=low_cardinality, n=n, settings=settings,
                     override=override, distribution=distribution)
    explicit = override is not None and (override.method != "auto" or override.threshold is not None)
    if not widened or explicit or widened.get("method") != choice.method:
        return choice
    given = float(widened["threshold"])
    th = min(choice.threshold, given) if choice.method in TEST_METHODS else max(choice.threshold, given)
    return Choice(choice.method, th, choice.why + "; threshold from false-positive feedback (baseline)", True)


def _choose(*, categorical: bool, binary: bool, low_cardinality: bool, n: int, settings: DriftSettings,
            override: FeatureDrift | None, distribution: dict | None) -> Choice:
    if override is not None and override.method != "auto":
        return Choice(override.method, _threshold(override.method, override.threshold, settings), "set in the model file")
    dist = sagemaker_distribution(distribution) if distribution else None
    if dist and dist["perform_comparison"]:
        if categorical or low_cardinality:
            meth, th = dist["categorical_method"], dist["categorical_comparison_threshold"]
        else:
            meth, th = dist["numeric_method"], dist["comparison_threshold"]
        if override is not None and override.threshold is not None:
            th = override.threshold
        return Choice(meth, th, "SageMaker baseline's distribution_constraints")
    default = settings.categorical_method if categorical else settings.numeric_method
    if default != "auto":
        th = override.threshold if override is not None else None
        return Choice(default, _threshold(default, th, settings), "model-wide drift setting")
    small = n <= settings.small_sample
    size = f"{n} values {'<=' if small else '>'} {settings.small_sample}"
    if binary:
        meth, why = ("z_test", f"binary, {size}") if small else ("jensen_shannon", f"binary, {size}")
    elif categorical or low_cardinality:
        kind = "categorical" if categorical else f"numeric with <= {LOW_CARDINALITY} distinct values"
        meth, why = ("chi_square", f"{kind}, {size}") if small else ("jensen_shannon", f"{kind}, {size}")
    else:
        meth, why = ("ks", f"numeric, {size}") if small else ("wasserstein", f"numeric, {size}")
    th = override.threshold if override is not None else None
    return Choice(meth, _threshold(meth, th, settings), why)


# -- measures on profiles --------------------------------------------------------------
def _weighted_cdf(values: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    v, cw = values[order], np.cumsum(weights[order])
    return cw[np.searchsorted(v, points, side="right") - 1].clip(0) * (np.searchsorted(v, points, side="right") > 0) / cw[-1]


def ks_weighted(ref: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray], n_ref: int, n_cur: int,
                alpha: float) -> m.DriftResult:
    """KS statistic between two weighted samples (sketch items, or raw values with weight 1)
    and its asymptotic p-value for the true sample sizes (as scipy's ks_2samp 'asymp')."""
    points = np.unique(np.concatenate([ref[0], cur[0]]))
    d = float(np.max(np.abs(_weighted_cdf(*ref, points) - _weighted_cdf(*cur, points))))
    en = n_ref * n_cur / (n_ref + n_cur)
    p = float(stats.kstwo.sf(d, max(1, round(en))))
    return m.DriftResult("ks", d, alpha, bool(p < alpha), p)


def _values(col: str, profile: NumericProfile, frame: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Raw values when a frame holds the column, else the sketch's weighted items."""
    if frame is not None and col in frame.columns:
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        v = v[~np.isnan(v)]
        return v, np.ones(v.size)
    return profile.weighted_items()


def _bin_labels(edges: np.ndarray) -> list[str]:
    """A label per bin: the value itself for one-value bins of a low-cardinality column."""
    return [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]


def category_counts(profile: ColumnProfile, k: int = 200) -> dict[str, float]:
    """Counts per category (top k + '__other__' past a sketch) or per bin for numbers."""
    if isinstance(profile, NumericProfile):
        if profile.bin_counts is None:
            raise ValueError("numeric profile has no bin counts")
        return dict(zip(_bin_labels(profile.edges), profile.bin_counts.tolist()))
    top, other = profile.top(k) if not profile.exact else (profile.counts, 0)
    out = {str(c): float(n) for c, n in top.items()}
    if other:
        out["__other__"] = float(other)
    return out


def _aligned(ref: dict[str, float], cur: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    cats = sorted(set(ref) | set(cur))
    return np.array([ref.get(c, 0.0) for c in cats]), np.array([cur.get(c, 0.0) for c in cats])


def wasserstein_score(ref: NumericProfile, cur: NumericProfile, ref_items=None, cur_items=None) -> float:
    """Wasserstein distance normed by the baseline's sd (raw sd 0: the raw distance)."""
    r = ref_items if ref_items is not None else ref.weighted_items()
    c = cur_items if cur_items is not None else cur.weighted_items()
    if r[0].size == 0 or c[0].size == 0:
        return 0.0
    d = float(stats.wasserstein_distance(r[0], c[0], r[1], c[1]))
    sd = math.sqrt(ref.variance) if ref.present else 0.0
    return d / sd if sd > 0 else d


def measure(method: str, threshold: float, ref: ColumnProfile, cur: ColumnProfile, *, name: str,
            ref_frame: pd.DataFrame | None = None, cur_frame: pd.DataFrame | None = None) -> m.DriftResult:
    """Run one named measure on two column profiles (raw frames where they help)."""
    numeric = isinstance(ref, NumericProfile)
    if method == "ks":
        r, c = _values(name, ref, ref_frame), _values(name, cur, cur_frame)
        if ref_frame is not None and cur_frame is not None and name in ref_frame and name in cur_frame:
            return m.ks(r[0], c[0], alpha=threshold)
        return ks_weighted(r, c, ref.present, cur.present, threshold)
    if method == "wasserstein":
        stat = wasserstein_score(ref, cur, _values(name, ref, ref_frame), _values(name, cur, cur_frame))
        return m.DriftResult("wasserstein", stat, threshold, bool(stat >= threshold))
    if method in ("linf_cdf_simple", "linf_cdf_robust"):
        return m.linf_cdf_sketch(ref, cur, method=method.rsplit("_", 1)[1].capitalize(), threshold=threshold)
    if numeric and ref.bin_counts is None:
        raise ValueError(f"{name}: the baseline has no bins for {method}")
    rc, cc = category_counts(ref), category_counts(cur)
    if method == "chi_square":
        return m.chi_square(rc, cc, alpha=threshold)
    if method == "z_test":
        cats = sorted(rc)
        positive = cats[-1]
        return m.z_test_proportions(rc[positive], sum(rc.values()), cc.get(positive, 0.0), sum(cc.values()),
                                    alpha=threshold)
    a, b = _aligned(rc, cc)
    fn = {"psi": m.psi, "jensen_shannon": m.jensen_shannon, "hellinger": m.hellinger, "linf": m.linf}[method]
    return fn(a, b, threshold=threshold)


def missing_check(ref: ColumnProfile, cur: ColumnProfile, settings: DriftSettings) -> dict:
    """The missing-value share as a drift signal of its own."""
    r = ref.missing / ref.count if ref.count else 0.0
    c = cur.missing / cur.count if cur.count else 0.0
    out: dict[str, Any] = {"reference_share": r, "current_share": c, "change": c - r}
    if min(ref.count, cur.count) <= settings.small_sample:
        res = m.z_test_proportions(ref.missing, ref.count, cur.missing, cur.count, alpha=settings.alpha)
        out.update(method="z_test", statistic=res.statistic, threshold=res.threshold, pvalue=res.pvalue,
                   drifted=res.drifted)
    else:
        out.update(method="absolute_change", statistic=abs(c - r), threshold=settings.missing_share, pvalue=None,
                   drifted=bool(abs(c - r) >= settings.missing_share))
    return out


def drift_score(ref: ColumnProfile, cur: ColumnProfile, missing: dict, settings: DriftSettings) -> float:
    """Effect size in multiples of the default threshold (see the module docstring)."""
    if cur.count - cur.missing == 0 or ref.count - ref.missing == 0:
        effect = 0.0
    elif isinstance(ref, NumericProfile) and ref.edges is not None and len(ref.edges) - 2 <= LOW_CARDINALITY:
        a, b = _aligned(category_counts(ref), category_counts(cur))
        effect = m.jensen_shannon(a, b).statistic / DEFAULT_THRESHOLDS["jensen_shannon"]
    elif isinstance(ref, NumericProfile):
        effect = wasserstein_score(ref, cur) / DEFAULT_THRESHOLDS["wasserstein"]
    else:
        a, b = _aligned(category_counts(ref), category_counts(cur))
        effect = m.jensen_shannon(a, b).statistic / DEFAULT_THRESHOLDS["jensen_shannon"]
    return max(effect, abs(missing["change"]) / settings.missing_share)


def summarize(profile: ColumnProfile) -> dict:
    s = profile.summary()
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in s.items()}


# -- one column ---------------------------------------------------------------------------
def check_column(name: str, ftype: str, ref: ColumnProfile, cur: ColumnProfile, settings: DriftSettings, *,
                 override: FeatureDrift | None = None, distribution: dict | None = None, distinct: int | None = None,
                 ref_frame: pd.DataFrame | None = None, cur_frame: pd.DataFrame | None = None,
                 widened: dict | None = None) -> dict:
    """Everything drift.json says about one column. ``widened``: see choose_method."""
    missing = missing_check(ref, cur, settings)
    out: dict[str, Any] = {"type": ftype, "reference": summarize(ref), "current": summarize(cur), "missing": missing}
    if override is not None and not override.enabled:
        return out | {"checked": False, "why": "drift.enabled is false for this feature", "drifted": False,
                      "score": 0.0}
    n = min(ref.count - ref.missing, cur.count - cur.missing)
    if n == 0:
        return out | {"checked": False, "why": "no present values on one side", "drifted": bool(missing["drifted"]),
                      "score": drift_score(ref, cur, missing, settings)}
    categorical = isinstance(ref, CategoricalProfile)
    if categorical:
        ref_cats = ref.counts if ref.exact else ref.top(3)[0]
        binary = len(ref_cats) == 2 and (not cur.exact or set(cur.counts) <= set(ref_cats))
    else:
        binary = distinct == 2 and (cur.bin_counts is None or np.count_nonzero(cur.bin_counts) <= 2)
    low = (not categorical) and distinct is not None and distinct <= LOW_CARDINALITY and ref.bin_counts is not None
    choice = choose_method(categorical=categorical, binary=binary, low_cardinality=low, n=n, settings=settings,
                           override=override, distribution=distribution, widened=widened)
    method = choice.method
    if method == "z_test" and not binary:
        method, choice = "chi_square", Choice("chi_square", choice.threshold, choice.why + "; a third value appeared",
                                              choice.from_feedback)
    res = measure(method, choice.threshold, ref, cur, name=name, ref_frame=ref_frame, cur_frame=cur_frame)
    out.update(checked=True, method=res.method, statistic=res.statistic, threshold=res.threshold, pvalue=res.pvalue,
               distribution_drifted=res.drifted, why=choice.why,
               drifted=bool(res.drifted or missing["drifted"]),
               score=drift_score(ref, cur, missing, settings))
    if choice.from_feedback:
        out["threshold_feedback"] = {"was": widened.get("was"), "threshold": res.threshold,
                                     **(widened.get("because") or {})}
    return out


# -- the whole comparison -------------------------------------------------------------
def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down): p_adj(i) = max over j <= i of
    min(1, (m - j + 1) p(j)) in ascending order. Written out here because scipy offers only
    Benjamini-Hochberg (scipy.stats.false_discovery_control) and statsmodels is not a
    dependency for six lines."""
    p = np.asarray(pvalues, dtype="float64")
    m_ = p.size
    adjusted = np.empty(m_)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m_ - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _correct(groups: list[dict[str, dict]], settings: DriftSettings) -> None:
    """Apply the multiple-testing correction to the run's test verdicts (in place): the
    features' and the predictions' tests are one family."""
    tests = []
    for r in [r for g in groups for r in g.values()]:
        if r.get("checked") and r.get("method") in TEST_METHODS and r.get("pvalue") is not None:
            tests.append((r, "distribution"))
        if r.get("missing", {}).get("method") == "z_test":
            tests.append((r["missing"], "missing"))
    if not tests:
        return
    pvals = [r["pvalue"] for r, _ in tests]
    adjusted = holm(pvals) if settings.correction == "holm" else pvals
    for (r, kind), adj in zip(tests, adjusted):
        r["pvalue_adjusted"] = adj
        # a feature's own alpha (the model file's, or lowered by feedback) judges its test
        alpha = r.get("threshold", settings.alpha) if kind == "distribution" else settings.alpha
        verdict = bool(adj < alpha)
        if kind == "distribution":
            r["distribution_drifted"] = verdict
        else:
            r["drifted"] = verdict
    for r in [r for g in groups for r in g.values()]:
        if r.get("checked"):
            r["drifted"] = bool(r.get("distribution_drifted") or r["missing"].get("drifted"))
        elif "missing" in r:
            r["drifted"] = bool(r["missing"].get("drifted"))

def _rank(values: dict[str, float]) -> dict[str, int]:
    order = sorted(values, key=lambda k: (-values[k], k))
    return {k: i + 1 for i, k in enumerate(order)}


def attribution(features: dict[str, dict], importance: dict[str, float] | None) -> list[dict]:
    """The drifted features ranked by drift score x importance (then the others); each
    drifted feature's share of the drifted features' total."""
    imp = {f: max(0.0, float((importance or {}).get(f, 0.0))) for f in features}
    if not importance or sum(imp.values()) <= 0:
        imp = {f: 1.0 for f in features}
    total_imp = sum(imp.values())
    weights = {f: v / total_imp for f, v in imp.items()}
    ranks = _rank(imp)
    contrib = {f: features[f].get("score", 0.0) * weights[f] for f in features}
    drifted_total = sum(contrib[f] for f in features if features[f].get("drifted"))
    rows = []
    # drifted features first: an undrifted feature's score is sampling noise, whatever its weight
    for f in sorted(features, key=lambda f: (not features[f].get("drifted"), -contrib[f], f)):
        rows.append({"feature": f, "drifted": bool(features[f].get("drifted")), "score": features[f].get("score", 0.0),
                     "importance": weights[f], "importance_rank": ranks[f], "contribution": contrib[f],
                     "share": (contrib[f] / drifted_total) if features[f].get("drifted") and drifted_total > 0 else 0.0})
    return rows


def _check(reference: Reference, col: str, ftype: str, current: DatasetProfile, settings: DriftSettings,
           current_frame: pd.DataFrame | None, **kw: Any) -> dict:
    """check_column with what the baseline keeps of the column: its sample (unless feedback
    replaced its reference), and the feedback it absorbed."""
    absorbed = reference.absorbed.get(col)
    out = check_column(col, ftype, reference.profile.columns[col], current.columns[col], settings,
                       distinct=reference.distinct.get(col), ref_frame=None if absorbed else reference.sample,
                       cur_frame=current_frame, widened=reference.widened.get(col), **kw)
    if absorbed:
        out["reference_feedback"] = absorbed
    return out


def compare(reference: Reference, current: DatasetProfile, settings: DriftSettings, *,
            overrides: Mapping[str, FeatureDrift] | None = None, current_frame: pd.DataFrame | None = None,
            current_sample: pd.DataFrame | None = None) -> dict:
    """Compare a batch's profile with a baseline. Returns drift.json's body (without the
    run's identity). ``current_frame``: the batch's rows when it is small (exact tests);
    ``current_sample``: a sample of its rows (multivariate checks)."""
    overrides = overrides or {}
    ref_prof = reference.profile
    # a feature missing from the batch is named, not checked; drift goes on with the others
    missing_cols = [c for c in reference.kinds if c not in current.columns]
    if current_frame is not None and len(current_frame) > settings.small_sample:
        current_frame = None  # raw rows only where tests apply
    distribution = reference.distribution
    if distribution and not sagemaker_distribution(distribution)["perform_comparison"]:
        skipped = "the SageMaker baseline's distribution_constraints.perform_comparison is Disabled"
        return {"checked": False, "why": skipped, "features": {}, "dataset": None, "prediction": {},
                "multivariate": {}, "attribution": [], "summary": f"drift not checked: {skipped}"}
    features = {}
    for col, ftype in reference.kinds.items():
        if col in missing_cols:
            features[col] = {"type": ftype, "checked": False, "drifted": False, "score": 0.0, "missing_column": True,
                             "why": "the column is missing from the batch (data quality reports it as "
                                    "missing_column_check); not checked"}
            continue
        if ftype == "datetime":
            features[col] = {"type": ftype, "checked": False, "drifted": False, "score": 0.0,
                             "why": "datetime features are not checked for drift"}
            continue
        features[col] = _check(reference, col, ftype, current, settings, current_frame, override=overrides.get(col),
                               distribution=distribution)
    prediction = {}
    for col, ptype in reference.prediction_kinds.items():
        if col in current.columns and col in ref_prof.columns:
            prediction[col] = _check(reference, col, ptype, current, settings, current_frame)
    _correct([features, prediction], settings)
    checked = [f for f, r in features.items() if r.get("checked")]
    drifted = [f for f in checked if features[f]["drifted"]]
    share = len(drifted) / len(checked) if checked else 0.0
    dataset = {"features": len(checked), "drifted": len(drifted), "share": share, "drift_share": settings.drift_share,
               "dataset_drift": bool(checked) and share >= settings.drift_share, "drifted_features": drifted}
    ranking = attribution({f: features[f] for f in checked}, reference.importance)
    for row in ranking:
        features[row["feature"]].update(importance=row["importance"], importance_rank=row["importance_rank"],
                                        contribution_share=row["share"])
    multi = multivariate(reference, current_sample, settings)
    out = {"checked": True, "features": features, "dataset": dataset, "prediction": prediction, "multivariate": multi,
           "attribution": ranking, "importance_source": reference.importance_source}
    out["summary"] = summary_line(out)
    return out


def model_frame(df: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """The frame the multivariate methods see: numbers as floats, everything else as text."""
    out = {}
    for c, t in kinds.items():
        if t in NUMERIC_TYPES:
            out[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif t == "boolean":
            out[c] = df[c].map(lambda v: None if pd.isna(v) else str(bool(v)).lower()).astype(object)
        else:
            out[c] = df[c].astype(object).where(df[c].notna(), None).map(lambda v: v if v is None else str(v))
    return pd.DataFrame(out, index=df.index)


def multivariate(reference: Reference, current_sample: pd.DataFrame | None, settings: DriftSettings) -> dict:
    """PCA reconstruction error and a domain classifier (driftline.stats.multivariate)."""
    if not settings.multivariate:
        return {"checked": False, "why": "drift.multivariate is false"}
    kinds = {c: t for c, t in reference.kinds.items() if t != "datetime"}
    if not kinds:
        return {"checked": False, "why": "no numeric or categorical features"}
    if not reference.multivariate and (reference.sample is None or len(reference.sample) < 20):
        return {"checked": False, "why": "the baseline keeps no reference sample (e.g. an imported SageMaker "
                                         "baseline, or a profile JSON without its data)"}
    if current_sample is None or len(current_sample) < 20:
        return {"checked": False, "why": "fewer than 20 rows of the batch sampled"}
    from driftline.stats import multivariate as mv

    absent = [c for c in kinds if c not in current_sample.columns]
    if absent:
        return {"checked": False, "why": f"columns {absent} are missing from the batch: the joint distribution "
                                         f"cannot be compared (each present feature is checked on its own)"}
    numeric, categorical = _split(kinds)
    cur = model_frame(current_sample, kinds)
    out: dict[str, Any] = {"checked": True}
    if reference.multivariate:
        out["pca_reconstruction"] = mv.ReconstructionModel.from_dict(reference.multivariate).score(cur)
    if reference.sample is not None and len(reference.sample) >= 20:
        out["domain_classifier"] = mv.domain_classifier(model_frame(reference.sample, kinds), cur, numeric, categorical)
    out["drifted"] = any(v.get("drifted") for k, v in out.items() if isinstance(v, dict))
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def summary_line(result: dict) -> str:
    """'3 of 11 features drifted; `income` (importance rank 1) explains 61% of it; ...'"""
    ds = result["dataset"]
    parts = [f"{ds['drifted']} of {ds['features']} features drifted"]
    if ds["dataset_drift"]:
        parts[0] += f" (dataset drift: {ds['share']:.0%} >= {ds['drift_share']:.0%})"
    top = [r for r in result["attribution"] if r["drifted"]]
    if top:
        lead = top[0]
        weighted = result.get("importance_source", "none") != "none"
        rank = f" (importance rank {lead['importance_rank']})" if weighted else ""
        parts.append(f"`{lead['feature']}`{rank} explains {lead['share']:.0%} of it")
    pd_ = [c for c, r in result["prediction"].items() if r.get("drifted")]
    if pd_:
        parts.append("prediction drift on " + ", ".join(f"`{c}`" for c in pd_))
    mv = result.get("multivariate", {})
    if mv.get("checked") and mv.get("drifted"):
        which = [k for k, v in mv.items() if isinstance(v, dict) and v.get("drifted")]
        parts.append("multivariate drift (" + ", ".join(which) + ")")
    return "; ".join(parts)


def violations(result: dict) -> list[dict]:
    """SageMaker-style ``baseline_drift_check`` violations (and driftline's
    ``multivariate_drift_check``) from a comparison."""
    out = []
    for group in ("features", "prediction"):
        for name, r in result.get(group, {}).items():
            if not r.get("checked"):
                continue
            if r.get("distribution_drifted"):
                if r["pvalue"] is not None and r["method"] in TEST_METHODS:
                    desc = (f"Baseline drift test {r['method']}: p-value {_fmt(r['pvalue'])} is below the "
                            f"significance level {_fmt(r['threshold'])} (statistic {_fmt(r['statistic'])})")
                else:
                    desc = (f"Baseline drift distance: {_fmt(r['statistic'])} exceeds threshold: "
                            f"{_fmt(r['threshold'])} ({r['method']})")
                out.append({"feature_name": name, "constraint_check_type": "baseline_drift_check",
                            "description": desc, "details": {"method": r["method"], "statistic": r["statistic"],
                                                             "threshold": r["threshold"], "pvalue": r["pvalue"],
                                                             "prediction": group == "prediction"}})
            miss = r["missing"]
            if miss.get("drifted"):
                out.append({"feature_name": name, "constraint_check_type": "baseline_drift_check",
                            "description": f"Missing-value share drifted: {miss['current_share']:.1%} against "
                                           f"{miss['reference_share']:.1%} in the baseline ({miss['method']})",
                            "details": {"method": f"missing_share_{miss['method']}", "statistic": miss["statistic"],
                                        "threshold": miss["threshold"], "pvalue": miss["pvalue"]}})
    mv = result.get("multivariate", {})
    for k, v in mv.items():
        if isinstance(v, dict) and v.get("drifted"):
            crossed_side = "lower" if v.get("lower_threshold") is not None and v["statistic"] < v["lower_threshold"] \
                else "upper"
            out.append({"feature_name": "*", "constraint_check_type": "multivariate_drift_check",
                        "description": f"Multivariate drift ({k}): {multivariate_verdict(v)}",
                        "details": {"method": k, "statistic": v["statistic"], "threshold": v["threshold"],
                                    "lower_threshold": v.get("lower_threshold"), "crossed": crossed_side,
                                    "pvalue": v.get("pvalue")}})
    return out


def multivariate_verdict(v: dict) -> str:
    """A multivariate check's statistic against the bound it crossed (the PCA reconstruction
    error has two: an error *below* its lower bound is drift too), or within its bounds.
    The reconstruction error drifts past either bound; the domain classifier's AUC at or
    above its threshold (with a p-value below alpha)."""
    stat, upper, lower = v["statistic"], v.get("threshold"), v.get("lower_threshold")
    if v.get("method") == "domain_classifier":
        text = crossed(stat, upper=upper, inclusive=True) or within(stat, None, upper)
        return f"AUC {text}" + (f" (p-value {_fmt(v['pvalue'])})" if v.get("pvalue") is not None else "")
    text = crossed(stat, lower=lower, upper=upper) or within(stat, lower, upper)
    if v.get("method") == "pca_reconstruction":
        ref = f" (reference {number(v['reference_error'], stat)})" if v.get("reference_error") is not None else ""
        return f"mean reconstruction error {text}{ref}"
    return text


def findings(result: dict, limit: int = 12) -> list[str]:
    """One line per drifted column, most important first, for the task's summary block."""
    lines = []
    order = [r["feature"] for r in result.get("attribution", []) if r["drifted"]]
    for name in order:
        r = result["features"][name]
        bits = []
        if r.get("distribution_drifted"):
            p = f", p={_fmt(r['pvalue'])}" if r["pvalue"] is not None else ""
            bits.append(f"{r['method']} {_fmt(r['statistic'])} vs {_fmt(r['threshold'])}{p}")
        if r["missing"]["drifted"]:
            bits.append(f"missing {r['missing']['reference_share']:.1%} -> {r['missing']['current_share']:.1%}")
        lines.append(f"{name}: " + "; ".join(bits) + f" (share of drift {r.get('contribution_share', 0):.0%})")
    for name, r in result.get("prediction", {}).items():
        if r.get("drifted"):
            lines.append(f"prediction {name}: {r['method']} {_fmt(r['statistic'])} vs {_fmt(r['threshold'])}")
    for k, v in result.get("multivariate", {}).items():
        if isinstance(v, dict) and "statistic" in v:
            lines.append(f"multivariate {k}: {multivariate_verdict(v)}{' DRIFT' if v.get('drifted') else ''}")
    return lines[:limit]


# -- outside Airflow: files or frames in, drift.json out ------------------------------------
#: Arrow types -> feature types, when no model file says what the columns are.
def infer_kinds(schema) -> dict[str, str]:
    import pyarrow as pa

    kinds = {}
    for f in schema:
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_boolean(t):
            kinds[f.name] = "boolean"
        elif pa.types.is_integer(t):
            kinds[f.name] = "integer"
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[f.name] = "numeric"
        elif pa.types.is_timestamp(t) or pa.types.is_date(t):
            kinds[f.name] = "datetime"
        else:
            kinds[f.name] = "categorical"
    return kinds


def _open_table_source(data, resolver=None):
    """(kind, object): an Arrow table for frames/tables/CSV, or an open Parquet file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from driftline.store import default_resolver

    if isinstance(data, pd.DataFrame):
        return "table", pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, pa.Table):
        return "table", data
    uri = str(data)
    fs, path = (resolver or default_resolver)(uri if "://" in uri else f"file://{os.path.abspath(uri)}")
    if not fs.exists(path):
        raise FileNotFoundError(f"{uri}: no such file")
    if path.endswith((".csv", ".csv.gz")):
        with fs.open(path, "rb") as f:
            return "table", pacsv.read_csv(f)
    return "parquet", (fs, path)


def _schema(kind: str, obj):
    import pyarrow.parquet as pq

    if kind == "table":
        return obj.schema
    fs, path = obj
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).schema_arrow


def open_source(data, resolver=None):
    """(source, column kinds): a source to profile again without re-parsing (an Arrow table
    for frames, tables and CSV files; the path or URL itself for Parquet, which is read by
    column chunk) and the feature types its schema implies."""
    kind, obj = _open_table_source(data, resolver)
    return (obj if kind == "table" else data), infer_kinds(_schema(kind, obj))


def fit_multivariate(sample: pd.DataFrame, kinds: Mapping[str, str], seed: int = 0) -> dict:
    """The PCA reconstruction model (driftline.stats.multivariate) of a reference sample, as JSON."""
    from driftline.stats.multivariate import fit_reconstruction

    used = {c: t for c, t in kinds.items() if t != "datetime"}
    numeric, categorical = _split(used)
    return fit_reconstruction(model_frame(sample, used), numeric, categorical, seed=seed).to_dict()


def _split(kinds: Mapping[str, str]) -> tuple[list[str], list[str]]:
    numeric = [c for c, t in kinds.items() if t in NUMERIC_TYPES]
    return numeric, [c for c in kinds if c not in numeric]


def _profile_columns(fs, path: str, specs: dict[str, ColumnSpec]) -> dict:
    from driftline.stats.profile import profile_parquet

    with fs.open(path, "rb") as f:
        return profile_parquet(f, specs).to_dict()


def profile_source(data, specs: dict[str, ColumnSpec], *, workers: int = 1, resolver=None,
                   sample_rows: int = 0, seed: int = 0) -> tuple[DatasetProfile, pd.DataFrame | None]:
    """Profile a DataFrame, Arrow table, CSV or Parquet file (path or URL). Parquet files are
    read a column chunk at a time; with ``workers`` > 1 the columns are shared out between
    that many processes (each reads only its own columns). Returns the profile and, if
    ``sample_rows``, a random sample of about that many rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftline.stats.profile import profile_parquet, sample_parquet

    kind, obj = _open_table_source(data, resolver)
    if kind == "table":
        prof = profile_table(obj, specs)
        sample = None
        if sample_rows and obj.num_rows:
            n = min(sample_rows, obj.num_rows)
            idx = np.sort(np.random.default_rng(seed).choice(obj.num_rows, n, replace=False))
            sample = obj.take(pa.array(idx)).to_pandas()
        return prof, sample
    fs, path = obj
    with fs.open(path, "rb") as f:
        total = pq.ParquetFile(f).metadata.num_rows
    names = list(specs)
    if workers > 1 and len(names) > 1 and total > 100_000:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        groups = [{c: specs[c] for c in names[i::workers]} for i in range(workers)]
        groups = [g for g in groups if g]
        with ProcessPoolExecutor(len(groups), mp_context=multiprocessing.get_context("fork")) as ex:
            parts = list(ex.map(_profile_columns, [fs] * len(groups), [path] * len(groups), groups))
        prof = DatasetProfile(rows=parts[0]["rows"])
        for part in parts:
            prof.columns.update(DatasetProfile.from_dict(part).columns)
        prof.columns = {c: prof.columns[c] for c in names}
    else:
        with fs.open(path, "rb") as f:
            prof = profile_parquet(f, specs)
    sample = None
    if sample_rows and total:
        with fs.open(path, "rb") as f:
            table = sample_parquet(f, min(1.0, sample_rows / total), columns=names, seed=seed)
        sample = table.to_pandas() if table is not None else None
    return prof, sample


def reference_from_source(data, kinds: Mapping[str, str], *, bins: int = 10, sample_rows: int = 10_000,
                          resolver=None, seed: int = 0) -> Reference:
    """A Reference profiled straight from data (two passes: sketches, then counts on the
    bin edges they give), with a raw sample for exact tests and the domain classifier."""
    kinds = dict(kinds)
    data, _ = open_source(data, resolver)  # a CSV is parsed once for both passes
    first, sample = profile_source(data, {c: ColumnSpec("numeric" if t in NUMERIC_TYPES else "categorical")
                                          for c, t in kinds.items() if t != "datetime"},
                                   resolver=resolver, sample_rows=sample_rows, seed=seed)
    binned = {c: ColumnSpec("numeric", edges_for(p, bins)) for c, p in first.columns.items()
              if isinstance(p, NumericProfile)}
    if binned:
        second, _ = profile_source(data, binned, resolver=resolver)
        for c, p in second.columns.items():
            first.columns[c].edges, first.columns[c].bin_counts = p.edges, p.bin_counts
    return Reference(profile=first, kinds=kinds, sample=sample, distinct=distinct_counts(first))


def reference_document(reference: Reference) -> dict:
    """A Reference as the JSON ``driftline profile`` writes (profile + kinds)."""
    return {"kinds": reference.kinds, "prediction_kinds": reference.prediction_kinds, **reference.profile.to_dict()}


def reference_from_document(doc: dict, sample: pd.DataFrame | None = None) -> Reference:
    profile = DatasetProfile.from_dict(doc)
    return Reference(profile=profile, kinds=dict(doc["kinds"]), prediction_kinds=dict(doc.get("prediction_kinds", {})),
                     sample=sample, distinct=distinct_counts(profile))


def detect_drift(reference, current, *, kinds: Mapping[str, str] | None = None,
                 settings: DriftSettings | None = None, overrides: Mapping[str, FeatureDrift] | None = None,
                 workers: int = 1, resolver=None) -> dict:
    """Drift between two datasets, from Python: ``reference`` is a Reference, a profile
    document (``driftline profile``), a DataFrame/Arrow table or a Parquet/CSV path or URL;
    ``current`` a DataFrame/table or a path. Column types come from ``kinds`` or from the
    data's schema. Returns drift.json's body."""
    settings = settings or DriftSettings()
    if isinstance(reference, dict):
        reference = reference_from_document(reference)
    if not isinstance(reference, Reference):
        reference, schema_kinds = open_source(reference, resolver)
        reference = reference_from_source(reference, kinds if kinds is not None else schema_kinds,
                                          bins=settings.bins, resolver=resolver)
        if settings.multivariate and reference.sample is not None and len(reference.sample) >= 100:
            reference.multivariate = fit_multivariate(reference.sample, reference.kinds)
    elif kinds is not None:
        reference.kinds = {c: t for c, t in reference.kinds.items() if c in kinds}
    wanted = [c for c, t in reference.kinds.items() if t != "datetime"]
    wanted += [c for c in reference.prediction_kinds if c in reference.profile.columns]
    specs = specs_from(reference.profile, wanted)
    kind, obj = _open_table_source(current, resolver)
    present = set(_schema(kind, obj).names)
    lacking = [c for c in reference.kinds if c not in present]
    if lacking:
        raise ValueError(f"the current data lacks columns {lacking}")
    specs = {c: s for c, s in specs.items() if c in present}
    sample_rows = 5_000 if settings.multivariate and (reference.multivariate or reference.sample is not None) else 0
    prof, sample = profile_source(obj if kind == "table" else current, specs, workers=workers, resolver=resolver,
                                  sample_rows=sample_rows)
    frame = None
    if prof.rows <= settings.small_sample:  # small: the raw rows, for exact tests
        if kind == "table":
            frame = obj.select(list(specs)).to_pandas()
        else:
            import pyarrow.parquet as pq

            fs, path = obj
            with fs.open(path, "rb") as f:
                frame = pq.read_table(f, columns=list(specs)).to_pandas()
        sample = frame if sample is None else sample
    return compare(reference, prof, settings, overrides=overrides, current_frame=frame, current_sample=sample)
