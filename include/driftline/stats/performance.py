"""Model quality: realized metrics from labels, and estimates of them before labels arrive.

Realized metrics (``realized_metrics``) are scikit-learn's, on the rows whose label has
arrived. Before labels arrive, two NannyML methods estimate them:

CBPE, confidence-based performance estimation (``Calibrator`` + ``estimate_metrics``), for
    classifiers. A calibrator fitted on the baseline's labelled holdout maps the model's score
    to the probability that the label is 1 (binary) or that the prediction is right
    (multiclass). Given those probabilities ``c``, the labels of an unlabelled interval are
    Bernoulli(``c``) draws, so the expected confusion matrix, and from it the metrics, follow.
    The uncertainty band is the spread of the metric over labels simulated from ``c``: it
    covers label sampling *given a correct calibration*, not calibration error and not concept
    drift (a change of P(y | x), which no label-free method can see). CBPE stays right under
    covariate shift (the model meets more hard or easy cases) as long as the calibration holds.

DLE, direct loss estimation (``LossEstimator``), for regression. Two gradient-boosting models,
    fitted on the labelled holdout, predict a row's absolute and squared error from its
    features and the prediction; their means over an interval estimate MAE and MSE.

``compare_to_baseline`` turns metric values (realized or estimated) into threshold breaches.

Every result is a plain dict of Python floats, ints, strings, lists and ``None``: a metric that
is undefined on the data is ``None`` and its reason is under ``"undefined"``.

References: NannyML documentation, "Estimation of Performance of the Monitored Model" (CBPE
and DLE); Zadrozny & Elkan (2002) for isotonic calibration; Naeini et al. (2015) for the
expected calibration error.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import stats
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from driftline.stats.metric_names import HIGHER_IS_BETTER, METRICS, PROBLEM_TYPES

#: Equal-width bins on [0, 1] for the expected calibration error and the reliability table.
CALIBRATION_BINS = 10

#: Folds for the out-of-fold "after calibration" summary of a Calibrator.
CALIBRATION_FOLDS = 5

#: Simulated (or resampled) values held in memory at once, in array cells; bounds memory at
#: about 8 bytes x this for any interval size.
_SIM_CELLS = 1_000_000

#: A categorical feature with more categories than this is given to the gradient boosting as
#: its ordinal code (HistGradientBoosting's native categorical support stops at max_bins).
_MAX_NATIVE_CATEGORIES = 255

#: OpenMP/BLAS threads for the gradient boosting and the simulations. HistGradientBoosting's
#: short parallel regions spin-wait when the cores are shared (an Airflow worker running other
#: tasks): on a busy 2-core machine a 5,000-row fit took 38 s with two threads, 0.2 s with one.
THREADS = 1

_NO_LABELS = "no labelled rows"
_NO_ROWS = "no rows in the interval"


# ---------------------------------------------------------------------------------------------
# helpers

def _check_problem_type(problem_type: str) -> None:
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}")


def _num(x) -> float | None:
    """A Python float, or None for None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _py(value):
    """A numpy scalar label as the Python scalar JSON understands."""
    return value.item() if isinstance(value, np.generic) else value


def _vector(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 0:
        raise ValueError(f"{name} must be a 1-D array, got a scalar")
    if a.ndim > 1:
        if a.ndim == 2 and 1 in a.shape:
            return a.ravel()
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    return a


def _floats(values, name: str, n: int | None = None) -> np.ndarray:
    a = _vector(values, name)
    try:
        a = a.astype("float64")
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers, got dtype {a.dtype}") from None
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise ValueError(f"{name} holds {bad} missing or infinite value(s): drop those rows first")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n} (one per row)")
    return a


def _probabilities(values, name: str, n: int | None = None) -> np.ndarray:
    p = _floats(values, name, n)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"{name} must be probabilities in [0, 1], found values in "
                         f"[{p.min():.6g}, {p.max():.6g}]")
    return p


def _binary(values, name: str, n: int | None = None) -> np.ndarray:
    a = _vector(values, name)
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n} (one per row)")
    if a.dtype == bool:
        return a.astype("int64")
    try:
        f = a.astype("float64")
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold 0/1 (or booleans) for binary_classification, "
                         f"got dtype {a.dtype}") from None
    bad = ~np.isin(f, (0.0, 1.0))
    if bad.any():
        found = np.unique(a[bad])[:5].tolist()
        raise ValueError(f"{name} must hold 0/1 (or booleans) for binary_classification; "
                         f"found {found}")
    return f.astype("int64")


def _band_bounds(band: float) -> tuple[float, float]:
    if not 0 < band < 1:
        raise ValueError(f"band must be in (0, 1), got {band}")
    return (1 - band) / 2, (1 + band) / 2


def _quantiles(sims: np.ndarray, q: tuple[float, float]) -> tuple[float | None, float | None]:
    finite = sims[np.isfinite(sims)]
    if finite.size == 0:
        return None, None
    lo, hi = np.quantile(finite, q)
    return _num(lo), _num(hi)


def _chunks(n_sim: int, n: int):
    """(start, size) blocks of simulations holding at most _SIM_CELLS cells each."""
    step = max(1, _SIM_CELLS // max(n, 1))
    for start in range(0, n_sim, step):
        yield start, min(step, n_sim - start)


def _ratio(num, den):
    """num / den, NaN where den == 0 (vectorised, no warnings)."""
    num, den = np.asarray(num, dtype="float64"), np.asarray(den, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _estimate_result(n: int, method: str, names: tuple[str, ...]) -> dict:
    return {"n": n, "method": method,
            "metrics": {m: {"value": None, "lower": None, "upper": None} for m in names},
            "undefined": {}, "confusion_matrix": None}


# ---------------------------------------------------------------------------------------------
# realized metrics

def realized_metrics(problem_type: str, y_true, y_pred, proba=None, threshold: float = 0.5) -> dict:
    """Model quality on labelled rows, every metric computed by scikit-learn.

    Returns ``{"n": int, "metrics": {name: float | None}, "undefined": {name: reason},
    "confusion_matrix": {"labels": [...], "matrix": [[int]]}}``, the metrics in the order of
    ``METRICS[problem_type]``; the confusion matrix (classifiers only, rows = true label,
    columns = predicted label) is ``sklearn.metrics.confusion_matrix``.

    binary_classification
        ``y_true`` and ``y_pred`` hold 0/1 (ints, floats or booleans); ``proba`` is the
        model's P(class 1). When ``proba`` is given, the predicted labels are
        ``proba >= threshold`` and ``y_pred`` is ignored (it may be None): the metrics are
        those of the model *at that threshold*, which is what the estimate (CBPE) reports
        too, so realized and estimated values compare like for like. Without ``proba`` the
        predicted labels are ``y_pred`` as the model emitted them, and ``roc_auc``,
        ``pr_auc`` and ``log_loss`` are None. ``precision`` is None when nothing is predicted
        positive, ``recall`` when no label is positive, ``f1`` when neither (sklearn would
        warn and substitute 0). ``roc_auc`` and ``pr_auc`` (``average_precision_score``: the
        step-wise area, no interpolation) are None when ``y_true`` holds one class only.
        ``log_loss`` uses ``labels=[0, 1]``; sklearn clips the probabilities to
        ``[eps, 1 - eps]``, eps the float64 machine epsilon.
    multiclass_classification
        Labels are ints or strings. Precision, recall and F1 are macro and support-weighted
        averages over the labels present in ``y_true`` or ``y_pred``, with
        ``zero_division=0`` (a class never predicted has precision 0), as sklearn.
    regression
        ``mae``, ``rmse``, ``r2`` and ``mape`` (``mean_absolute_percentage_error``, a
        fraction: 0.1 = 10 %). sklearn's MAPE divides by ``max(|y_true|, eps)``, so a row with
        ``y_true == 0`` contributes ``|y_pred| / 2.2e-16``, a huge but finite number: MAPE is
        only meaningful for targets bounded away from zero. ``r2`` is None for fewer than two
        rows or a constant ``y_true`` (sklearn would report 1.0 or 0.0 by convention).

    No rows: ``n = 0`` and every metric None with reason "no labelled rows".
    """
    _check_problem_type(problem_type)
    if problem_type == "binary_classification":
        return _realized_binary(y_true, y_pred, proba, threshold)
    if problem_type == "multiclass_classification":
        return _realized_multiclass(y_true, y_pred)
    return _realized_regression(y_true, y_pred)


def _empty_realized(problem_type: str, confusion: dict | None) -> dict:
    names = METRICS[problem_type]
    return {"n": 0, "metrics": dict.fromkeys(names), "undefined": dict.fromkeys(names, _NO_LABELS),
            "confusion_matrix": confusion}


def _matrix(cm: np.ndarray, labels) -> dict:
    return {"labels": [_py(v) for v in labels], "matrix": cm.astype("int64").tolist()}


def _realized_binary(y_true, y_pred, proba, threshold: float) -> dict:
    y = _binary(y_true, "y_true")
    n = int(y.size)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if proba is not None:
        p = _probabilities(proba, "proba", n)
        pred = (p >= threshold).astype("int64")
        if y_pred is not None and np.size(y_pred) != n:
            raise ValueError(f"y_pred has {np.size(y_pred)} values, expected {n} (one per row)")
    elif y_pred is None:
        raise ValueError("binary_classification needs y_pred or proba")
    else:
        p, pred = None, _binary(y_pred, "y_pred", n)
    if n == 0:
        return _empty_realized("binary_classification", _matrix(np.zeros((2, 2)), [0, 1]))

    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    (_, fp), (fn, tp) = cm
    values: dict[str, float | None] = {}
    undefined: dict[str, str] = {}
    values["accuracy"] = skm.accuracy_score(y, pred)
    if tp + fp == 0:
        undefined["precision"] = "no positive predictions (TP + FP = 0)"
    else:
        values["precision"] = skm.precision_score(y, pred, zero_division=0)
    if tp + fn == 0:
        undefined["recall"] = "no positive labels (TP + FN = 0)"
    else:
        values["recall"] = skm.recall_score(y, pred, zero_division=0)
    if tp + fp + fn == 0:
        undefined["f1"] = "no positive labels and no positive predictions"
    else:
        values["f1"] = skm.f1_score(y, pred, zero_division=0)
    if p is None:
        for name in ("roc_auc", "pr_auc", "log_loss"):
            undefined[name] = "needs the model's probabilities (proba not given)"
    else:
        if np.unique(y).size < 2:
            reason = f"y_true holds one class only ({int(y[0])}): the ranking metric is undefined"
            undefined["roc_auc"] = undefined["pr_auc"] = reason
        else:
            values["roc_auc"] = skm.roc_auc_score(y, p)
            values["pr_auc"] = skm.average_precision_score(y, p)
        values["log_loss"] = skm.log_loss(y, p, labels=[0, 1])
    return _realized_result(n, "binary_classification", values, undefined, _matrix(cm, [0, 1]))


def _realized_result(n: int, problem_type: str, values: dict, undefined: dict, confusion) -> dict:
    metrics: dict[str, float | None] = {}
    for name in METRICS[problem_type]:
        metrics[name] = _num(values.get(name))
        if metrics[name] is None and name not in undefined:
            undefined[name] = "undefined on these rows (scikit-learn returned NaN)"
    return {"n": n, "metrics": metrics,
            "undefined": {m: undefined[m] for m in METRICS[problem_type] if m in undefined},
            "confusion_matrix": confusion}


def _labels(values, name: str, n: int | None = None) -> np.ndarray:
    a = _vector(values, name)
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n} (one per row)")
    if a.dtype == object:
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in a):
            raise ValueError(f"{name} holds missing labels: drop those rows first")
    elif a.dtype.kind == "f" and np.isnan(a).any():
        raise ValueError(f"{name} holds missing labels: drop those rows first")
    return a


def _realized_multiclass(y_true, y_pred) -> dict:
    y = _labels(y_true, "y_true")
    n = int(y.size)
    pred = _labels(y_pred, "y_pred", n)
    if n == 0:
        return _empty_realized("multiclass_classification", {"labels": [], "matrix": []})
    try:
        labels = np.unique(np.concatenate([y, pred]))
    except TypeError:
        raise ValueError("y_true and y_pred mix label types (e.g. ints and strings): "
                         "use one type for both") from None
    values = {"accuracy": skm.accuracy_score(y, pred)}
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=average, zero_division=0)
        values.update({f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f})
    cm = skm.confusion_matrix(y, pred, labels=labels)
    return _realized_result(n, "multiclass_classification", values, {}, _matrix(cm, labels))


def _realized_regression(y_true, y_pred) -> dict:
    y = _floats(y_true, "y_true")
    n = int(y.size)
    pred = _floats(y_pred, "y_pred", n)
    if n == 0:
        return _empty_realized("regression", None)
    values = {"mae": skm.mean_absolute_error(y, pred),
              "rmse": skm.root_mean_squared_error(y, pred),
              "mape": skm.mean_absolute_percentage_error(y, pred)}
    undefined = {}
    if n < 2:
        undefined["r2"] = "fewer than two labelled rows"
    elif np.all(y == y[0]):
        undefined["r2"] = "y_true is constant: R2 divides by its variance, 0"
    else:
        values["r2"] = skm.r2_score(y, pred)
    return _realized_result(n, "regression", values, undefined, None)


# ---------------------------------------------------------------------------------------------
# calibration

def _ece(score: np.ndarray, target: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: sum over equal-width bins of share * |mean score - mean target|."""
    idx = np.minimum((score * bins).astype("int64"), bins - 1)
    count = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, weights=score, minlength=bins)
                 - np.bincount(idx, weights=target, minlength=bins))
    return float(gap.sum() / max(count.sum(), 1))


def _reliability(score: np.ndarray, target: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    idx = np.minimum((score * bins).astype("int64"), bins - 1)
    count = np.bincount(idx, minlength=bins)
    s = np.bincount(idx, weights=score, minlength=bins)
    t = np.bincount(idx, weights=target, minlength=bins)
    return [{"lower": b / bins, "upper": (b + 1) / bins, "n": int(count[b]),
             "mean_score": float(s[b] / count[b]) if count[b] else None,
             "observed": float(t[b] / count[b]) if count[b] else None} for b in range(bins)]


def _isotonic(score: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(score, target)
    return np.asarray(iso.X_thresholds_, dtype="float64"), np.asarray(iso.y_thresholds_, dtype="float64")


class Calibrator:
    """Maps the model's score to the probability that it is right, fitted on labelled reference
    data (the baseline's holdout, which the model did not train on).

    Isotonic regression (``sklearn.isotonic.IsotonicRegression``, increasing, outputs in
    [0, 1], ``out_of_bounds='clip'``): a non-decreasing step-and-ramp function, so it keeps the
    model's ranking (the AUC) and only fixes the probability scale.

    binary_classification: ``fit(proba, y_true)`` learns P(y = 1 | proba).
    multiclass_classification: ``fit(confidence, correct)`` learns P(prediction correct |
        confidence), where ``confidence`` is the model's probability of the class it predicted
        and ``correct = (y_pred == y_true)``.

    ``predict`` interpolates linearly between the fitted breakpoints (``np.interp``, as
    sklearn's isotonic regression does) and clips outside them, so a calibrator rebuilt by
    ``from_dict`` predicts exactly what the fitted one does.

    ``to_dict()["summary"]`` describes the fit data: ``n``, the base rate, the expected
    calibration error (ECE, ``CALIBRATION_BINS`` equal-width bins) and the Brier score of the
    raw scores (``*_before``) and of calibrated scores (``*_after``), and the reliability table
    of the raw scores. The ``*_after`` figures are out-of-fold (``CALIBRATION_FOLDS`` folds,
    each scored by a calibrator fitted on the other folds), since isotonic regression scored on
    its own fit data looks perfectly calibrated; they are None with fewer than
    ``2 * CALIBRATION_FOLDS`` rows.
    """

    def __init__(self, problem_type: str):
        _check_problem_type(problem_type)
        if problem_type == "regression":
            raise ValueError("a Calibrator is for classifiers; regression uses LossEstimator")
        self.problem_type = problem_type
        self.x_: np.ndarray | None = None
        self.y_: np.ndarray | None = None
        self.summary_: dict | None = None

    def fit(self, score, target) -> Calibrator:
        score = _probabilities(score, "score")
        target = _binary(target, "target", score.size).astype("float64")
        if score.size == 0:
            raise ValueError("Calibrator.fit: no rows to fit on")
        self.x_, self.y_ = _isotonic(score, target)
        self.summary_ = self._summary(score, target)
        return self

    def _summary(self, score: np.ndarray, target: np.ndarray) -> dict:
        n = score.size
        out = {"n": int(n), "base_rate": float(target.mean()), "bins": CALIBRATION_BINS,
               "ece_before": _ece(score, target), "brier_before": float(np.mean((score - target) ** 2)),
               "ece_after": None, "brier_after": None,
               "reliability_before": _reliability(score, target)}
        if n >= 2 * CALIBRATION_FOLDS:
            oof = np.empty(n)
            fold = np.random.default_rng(0).permutation(n) % CALIBRATION_FOLDS
            for k in range(CALIBRATION_FOLDS):
                x, y = _isotonic(score[fold != k], target[fold != k])
                oof[fold == k] = np.interp(score[fold == k], x, y)
            out["ece_after"] = _ece(oof, target)
            out["brier_after"] = float(np.mean((oof - target) ** 2))
        return out

    def predict(self, score) -> np.ndarray:
        if self.x_ is None:
            raise ValueError("Calibrator is not fitted: call fit() or from_dict() first")
        return np.interp(_probabilities(score, "score"), self.x_, self.y_)

    def to_dict(self) -> dict:
        if self.x_ is None:
            raise ValueError("Calibrator is not fitted: nothing to serialise")
        return {"method": "isotonic", "problem_type": self.problem_type,
                "x": self.x_.tolist(), "y": self.y_.tolist(), "summary": self.summary_}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        if d.get("method") != "isotonic":
            raise ValueError(f"calibrator method {d.get('method')!r} is not 'isotonic'")
        x, y = np.asarray(d["x"], dtype="float64"), np.asarray(d["y"], dtype="float64")
        if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0):
            raise ValueError("calibrator breakpoints must be two equal-length, non-empty lists "
                             "with x non-decreasing")
        cal = cls(d["problem_type"])
        cal.x_, cal.y_, cal.summary_ = x, y, d.get("summary")
        return cal


# ---------------------------------------------------------------------------------------------
# CBPE

def estimate_metrics(problem_type: str, calibrator: Calibrator, proba, threshold: float = 0.5,
                     n_sim: int = 500, seed=0, band: float = 0.9) -> dict:
    """Confidence-based performance estimation (CBPE, as NannyML names it) for one interval
    without labels.

    Returns ``{"n": int, "method": "cbpe", "metrics": {name: {"value", "lower", "upper"}},
    "undefined": {name: reason}, "confusion_matrix": {"labels": [0, 1], "matrix": [[float]]}}``
    (expected counts, rows = true label, columns = predicted; None for multiclass).

    binary_classification
        ``proba`` is the raw model P(class 1); ``c = calibrator.predict(proba)`` and the
        predicted label is ``proba >= threshold``. Expected counts: E[TP] = sum of c over
        predicted 1, E[FP] = sum of 1 - c over predicted 1, E[FN] = sum of c over predicted 0,
        E[TN] = sum of 1 - c over predicted 0 (they sum to n). Accuracy, precision, recall and
        F1 are computed from the expected counts, as NannyML does. ``roc_auc``: the expected
        TPR and FPR at every distinct score threshold (cumulative sums of c and 1 - c down the
        ranking) and the trapezoid area under them. ``pr_auc``: likewise the expected precision
        and recall at every threshold and the step-wise sum ``sum (R_k - R_k-1) P_k`` of
        ``average_precision_score``. ``log_loss = -mean(c log p + (1 - c) log(1 - p))`` with p
        the raw proba clipped to ``[eps, 1 - eps]`` as sklearn does. Ranking by the raw score or
        by c gives the same areas, because the isotonic map is non-decreasing and flat only
        where c is tied.
    multiclass_classification
        ``proba`` is the model's probability of the class it predicted (its confidence), 1-D;
        the calibrator was fitted on (confidence, correct). Only accuracy is estimated
        (``mean(c)``); the other metrics need the full probability vector per row.
    regression
        ValueError: use ``LossEstimator``.

    Band: ``n_sim`` label vectors y ~ Bernoulli(c) are simulated (``np.random.default_rng
    (seed)``), each metric is computed on each vector with the model's fixed scores and
    predictions (AUC by the rank-sum formula with mid-ranks, which equals sklearn's
    ``roc_auc_score`` with ties), and ``lower``/``upper`` are the ``(1 - band) / 2`` and
    ``(1 + band) / 2`` quantiles. The band covers the sampling of labels *given a correct
    calibration*: not calibration error, and not concept drift. ``n_sim = 0`` gives no band.

    A metric is None with a reason when undefined (e.g. precision with no positive predictions,
    AUC when every c is 0 or 1 on one side). No rows: ``n = 0`` and every value None.
    """
    _check_problem_type(problem_type)
    if problem_type == "regression":
        raise ValueError("estimate_metrics is confidence-based and needs a classifier; for "
                         "regression fit a LossEstimator on the labelled holdout and call its "
                         "estimate()")
    if not isinstance(calibrator, Calibrator):
        raise TypeError(f"calibrator must be a Calibrator, got {type(calibrator).__name__}")
    if calibrator.problem_type != problem_type:
        raise ValueError(f"the calibrator was fitted for {calibrator.problem_type}, "
                         f"not {problem_type}")
    if n_sim < 0:
        raise ValueError(f"n_sim must be >= 0, got {n_sim}")
    q = _band_bounds(band)
    if problem_type == "multiclass_classification" and np.ndim(proba) == 2 and np.shape(proba)[1] > 1:
        raise ValueError(f"multiclass proba must be 1-D: the probability of the predicted class "
                         f"per row, got shape {np.shape(proba)}")
    p = _probabilities(proba, "proba")
    n = int(p.size)
    result = _estimate_result(n, "cbpe", METRICS[problem_type])
    if problem_type == "binary_classification":
        result["confusion_matrix"] = {"labels": [0, 1], "matrix": [[0.0, 0.0], [0.0, 0.0]]}
    if n == 0:
        result["undefined"] = dict.fromkeys(METRICS[problem_type], _NO_ROWS)
        return result
    c = calibrator.predict(p)
    rng = np.random.default_rng(seed)
    if problem_type == "binary_classification":
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold}")
        points, undefined, matrix = _cbpe_binary_point(c, p, threshold)
        with threadpool_limits(THREADS):
            sims = _cbpe_binary_sims(c, p, threshold, n_sim, rng) if n_sim else {}
        result["confusion_matrix"]["matrix"] = matrix
    else:
        points = {"accuracy": float(c.mean())}
        undefined = {m: "needs the full probability vector per row; only accuracy is estimated "
                        "from the predicted class's confidence" for m in METRICS[problem_type][1:]}
        sims = {}
        if n_sim:
            acc = np.empty(n_sim)
            for start, size in _chunks(n_sim, n):
                acc[start:start + size] = (rng.random((size, n)) < c).mean(axis=1)
            sims["accuracy"] = acc
    for name in METRICS[problem_type]:
        value = _num(points.get(name))
        if value is None:
            undefined.setdefault(name, "undefined on this interval")
            continue
        lower, upper = _quantiles(sims[name], q) if name in sims else (None, None)
        result["metrics"][name] = {"value": value, "lower": lower, "upper": upper}
    result["undefined"] = {m: undefined[m] for m in METRICS[problem_type] if m in undefined}
    return result


def _ranked(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order by descending score, and the index of the last row of each group of tied
    scores in that order (one per distinct threshold)."""
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    ends = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    return order, ends


def _clipped_logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eps = np.finfo("float64").eps
    pc = np.clip(p, eps, 1 - eps)
    return np.log(pc), np.log1p(-pc)


def _cbpe_binary_point(c: np.ndarray, p: np.ndarray, threshold: float) -> tuple[dict, dict, list]:
    pred = p >= threshold
    tp, fp = float(c[pred].sum()), float((1 - c[pred]).sum())
    fn, tn = float(c[~pred].sum()), float((1 - c[~pred]).sum())
    n = c.size
    out: dict[str, float] = {"accuracy": (tp + tn) / n}
    undefined: dict[str, str] = {}
    if pred.any():
        out["precision"] = tp / (tp + fp)
    else:
        undefined["precision"] = f"no positive predictions (no proba >= {threshold})"
    if tp + fn > 0:
        out["recall"] = tp / (tp + fn)
    else:
        undefined["recall"] = "the calibrated probabilities are all 0: no expected positives"
    if tp + fp + fn > 0:
        out["f1"] = 2 * tp / (2 * tp + fp + fn)
    else:
        undefined["f1"] = "no positive predictions and no expected positives"
    pos, neg = float(c.sum()), float((1 - c).sum())
    if pos <= 0 or neg <= 0:
        reason = f"the calibrated probabilities are all {0 if pos <= 0 else 1}: one class only"
        undefined["roc_auc"] = undefined["pr_auc"] = reason
    else:
        order, ends = _ranked(p)
        cum_pos = np.cumsum(c[order])[ends]
        cum_neg = (ends + 1) - cum_pos
        tpr, fpr = np.r_[0.0, cum_pos / pos], np.r_[0.0, cum_neg / neg]
        out["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        out["pr_auc"] = float(np.sum(np.diff(tpr) * cum_pos / (ends + 1)))
    log_p, log_1p = _clipped_logs(p)
    out["log_loss"] = float(-np.mean(c * log_p + (1 - c) * log_1p))
    return out, undefined, [[tn, fp], [fn, tp]]


class _BinaryBatch:
    """The binary metrics of many label vectors at once, for fixed scores ``p`` and predictions
    ``p >= threshold``. Rows are held in descending score order (``order``); a label matrix
    passed to ``metrics`` must be in that order."""

    def __init__(self, p: np.ndarray, threshold: float):
        self.order, self.ends = _ranked(p)
        p = p[self.order]
        self.n = p.size
        self.pred = (p >= threshold).astype("float64")
        self.n_pred = self.pred.sum()
        self.ranks = stats.rankdata(p)  # ascending mid-ranks: their sum over positives -> U
        self.k = (self.ends + 1).astype("float64")  # rows at or above each distinct threshold
        log_p, log_1p = _clipped_logs(p)
        self.log_odds, self.log_neg = log_p - log_1p, log_1p.sum()

    def metrics(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """y: (m, n) 0/1 labels -> metric name -> (m,) values, NaN where undefined."""
        n, m = self.n, y.shape[0]
        pos = y.sum(axis=1)
        tp = y @ self.pred
        fp, fn = self.n_pred - tp, pos - tp
        # average precision: sum over distinct thresholds of (recall gain) x precision there
        cum = np.cumsum(y, axis=1)[:, self.ends]
        gain = np.diff(cum, axis=1, prepend=0.0)
        return {
            "accuracy": (n - fp - fn) / n,
            "precision": _ratio(tp, np.full(m, self.n_pred)),
            "recall": _ratio(tp, pos),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "roc_auc": _ratio(y @ self.ranks - pos * (pos + 1) / 2, pos * (n - pos)),
            "pr_auc": _ratio((gain * cum / self.k).sum(axis=1), pos),
            "log_loss": -(y @ self.log_odds + self.log_neg) / n,
        }


def _cbpe_binary_sims(c: np.ndarray, p: np.ndarray, threshold: float, n_sim: int,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each binary metric on n_sim label vectors y ~ Bernoulli(c), the scores fixed."""
    batch = _BinaryBatch(p, threshold)
    c = c[batch.order]
    sims = {m: np.empty(n_sim) for m in METRICS["binary_classification"]}
    for start, size in _chunks(n_sim, c.size):
        y = (rng.random((size, c.size)) < c).astype("float64")
        for name, values in batch.metrics(y).items():
            sims[name][start:start + size] = values
    return sims


# ---------------------------------------------------------------------------------------------
# DLE

def _columns(features) -> dict[str, np.ndarray]:
    """A DataFrame or a mapping of column name -> 1-D array, as name -> numpy array."""
    if hasattr(features, "columns") and hasattr(features, "dtypes"):  # a pandas DataFrame
        import pandas as pd

        out = {}
        for name in features.columns:
            s = features[name]
            if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
                # nullable Int64/boolean too: pd.NA becomes NaN, which the boosting routes
                out[str(name)] = s.to_numpy(dtype="float64", na_value=np.nan)
            elif pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype):
                out[str(name)] = s.to_numpy()  # rejected with a message below
            else:
                out[str(name)] = s.astype(object).to_numpy()
        return out
    if isinstance(features, dict):
        return {str(k): _vector(v, f"features[{k!r}]") for k, v in features.items()}
    raise TypeError(f"features must be a pandas DataFrame or a dict of 1-D arrays, "
                    f"got {type(features).__name__}")


def _is_missing(v) -> bool:
    """None, NaN, or pandas' NA/NaT (checked by type name: no pandas import needed)."""
    return v is None or (isinstance(v, float) and math.isnan(v)) \
        or type(v).__name__ in ("NAType", "NaTType")


def _column_kind(name: str, a: np.ndarray) -> str:
    if a.dtype.kind in "biuf":
        return "numeric"
    if a.dtype.kind in "mM":
        raise ValueError(f"feature {name!r} has dtype {a.dtype}: convert dates and durations to "
                         f"numbers (e.g. age in days) or leave the column out")
    if a.dtype == object and all(_is_missing(v) or isinstance(v, numbers.Real) for v in a):
        return "numeric"  # numbers and booleans, with None/NaN for missing
    return "categorical"


def _as_numeric(a: np.ndarray) -> np.ndarray:
    if a.dtype == object:
        return np.array([np.nan if _is_missing(v) else float(v) for v in a], dtype="float64")
    return a.astype("float64")


def _as_category(a: np.ndarray) -> np.ndarray:
    return np.array([np.nan if _is_missing(v) else str(v) for v in a], dtype=object)


class LossEstimator:
    """Direct loss estimation (DLE, as NannyML names it) for regression.

    ``fit`` trains two ``HistGradientBoostingRegressor`` models (squared-error loss, so each
    predicts a conditional mean, seeded with ``random_state``) on labelled reference data, the
    baseline's holdout where the model did not train: one of the absolute error
    ``|y_true - y_pred|`` and one of the squared error, from the features and the prediction.
    ``estimate`` predicts both for an interval's rows, floors them at 0, and reports
    ``mae = mean(predicted |error|)`` and ``rmse = sqrt(mean(predicted error**2))``. This
    follows the interval's mix of easy and hard rows (covariate shift) as long as the error
    given the features stays as it was on the reference (no concept drift).

    Features: a pandas DataFrame, or a dict of name -> 1-D numpy array. Numeric and boolean
    columns are used as numbers (missing values allowed, gradient boosting routes them).
    Other columns are categorical: values compared as ``str``, encoded with
    ``OrdinalEncoder(handle_unknown='use_encoded_value', unknown_value=-1)`` and given to the
    boosting as native categorical features (an unseen category or a missing value is treated
    as missing); a column with more than 255 categories is given as its ordinal code. Date
    and duration columns are refused.

    The band of ``estimate`` is a bootstrap over the interval's rows (``n_sim`` resamples, the
    ``(1 - band) / 2`` and ``(1 + band) / 2`` quantiles), with, in each resample, a normal draw
    for the noise of the realized errors around their predicted means (the realized MAE is a
    mean of n independent |errors|: variance ``sum(s_i - m_i**2) / n**2`` with ``m_i``, ``s_i``
    the predicted absolute and squared errors; for the MSE ``sum(2 s_i**2) / n**2``, exact for
    zero-mean normal errors and an upper bound for normal errors with any mean). Resampling
    alone covers only *which rows* the interval holds: on simulated data (2,000-row intervals,
    shifted or not) its 90 % band held the realized MAE or RMSE in 33-55 % of the intervals
    when the noise grew with a feature and in 15-35 % when it did not; with the noise term, in
    78-95 %. The band does not include the loss models' own error (e.g. extrapolating to a
    region the reference barely covered), heavy-tailed errors, or concept drift.

    ``save(path)``/``LossEstimator.load(path)`` use joblib (a pickle: load only our own files).
    """

    def __init__(self, random_state: int = 0):
        self.random_state = random_state
        self.columns_: list[tuple[str, str]] | None = None
        self.reference_: dict | None = None

    def _design(self, features, y_pred: np.ndarray, fitting: bool) -> np.ndarray:
        cols = _columns(features)
        n = y_pred.size
        for name, a in cols.items():
            if a.size != n:
                raise ValueError(f"feature {name!r} has {a.size} values, expected {n} (one per row)")
        if fitting:
            from sklearn.preprocessing import OrdinalEncoder

            self.columns_ = [(name, _column_kind(name, a)) for name, a in cols.items()]
            self.encoders_ = {}
            for name, kind in self.columns_:
                if kind == "categorical":
                    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                         encoded_missing_value=-1, dtype="float64")
                    enc.fit(_as_category(cols[name]).reshape(-1, 1))
                    self.encoders_[name] = enc
        else:
            missing = [name for name, _ in self.columns_ if name not in cols]
            if missing:
                raise ValueError(f"features lack column(s) {missing} that the LossEstimator was "
                                 f"fitted with")
        if n == 0:
            return np.empty((0, len(self.columns_) + 1))
        blocks = []
        for name, kind in self.columns_:
            a = cols[name]
            if kind == "numeric":
                if _column_kind(name, a) != "numeric":
                    raise ValueError(f"feature {name!r} was numeric when fitted, now holds "
                                     f"non-numeric values (dtype {a.dtype})")
                blocks.append(_as_numeric(a))
            else:
                blocks.append(self.encoders_[name].transform(_as_category(a).reshape(-1, 1)).ravel())
        blocks.append(y_pred)
        return np.column_stack(blocks)

    def fit(self, features, y_pred, y_true) -> LossEstimator:
        from sklearn.ensemble import HistGradientBoostingRegressor

        y_pred = _floats(y_pred, "y_pred")
        y_true = _floats(y_true, "y_true", y_pred.size)
        if y_pred.size < 2:
            raise ValueError(f"LossEstimator.fit needs labelled rows, got {y_pred.size}")
        x = self._design(features, y_pred, fitting=True)
        categorical = [kind == "categorical" and len(self.encoders_[name].categories_[0])
                       <= _MAX_NATIVE_CATEGORIES for name, kind in self.columns_] + [False]
        err = y_true - y_pred
        self.models_ = {}
        for target, values in (("abs", np.abs(err)), ("sq", err ** 2)):
            model = HistGradientBoostingRegressor(categorical_features=categorical,
                                                  random_state=self.random_state)
            with threadpool_limits(THREADS):
                self.models_[target] = model.fit(x, values)
        self.reference_ = {"n": int(y_pred.size), "mae": float(np.mean(np.abs(err))),
                           "rmse": float(np.sqrt(np.mean(err ** 2)))}
        return self

    def predict_losses(self, features, y_pred) -> tuple[np.ndarray, np.ndarray]:
        """Per-row predicted absolute and squared error (floored at 0)."""
        if self.columns_ is None:
            raise ValueError("LossEstimator is not fitted: call fit() or load() first")
        y_pred = _floats(y_pred, "y_pred")
        x = self._design(features, y_pred, fitting=False)
        if not y_pred.size:
            return np.empty(0), np.empty(0)
        with threadpool_limits(THREADS):
            return (np.maximum(self.models_["abs"].predict(x), 0.0),
                    np.maximum(self.models_["sq"].predict(x), 0.0))

    def estimate(self, features, y_pred, n_sim: int = 200, seed=0, band: float = 0.9) -> dict:
        """The interval's estimated mae and rmse, in ``estimate_metrics``'s shape (method
        "dle", confusion_matrix None); r2 and mape are None with a reason."""
        q = _band_bounds(band)
        if n_sim < 0:
            raise ValueError(f"n_sim must be >= 0, got {n_sim}")
        abs_err, sq_err = self.predict_losses(features, y_pred)
        n = int(abs_err.size)
        result = _estimate_result(n, "dle", METRICS["regression"])
        undefined = {"r2": "not estimated: it needs the variance of the unseen labels",
                     "mape": "not estimated: it needs the unseen labels' magnitudes"}
        if n == 0:
            result["undefined"] = dict.fromkeys(METRICS["regression"], _NO_ROWS)
            return result
        # per-row variance of the realized |error| and error**2 around their predicted means
        var_abs = np.maximum(sq_err - abs_err ** 2, 0.0)
        var_sq = 2 * sq_err ** 2
        mae, rmse = np.empty(n_sim), np.empty(n_sim)
        rng = np.random.default_rng(seed)
        for start, size in _chunks(n_sim, n):
            idx = rng.integers(0, n, size=(size, n))
            noise = rng.standard_normal((2, size))
            s = slice(start, start + size)
            mae[s] = abs_err[idx].mean(axis=1) + noise[0] * np.sqrt(var_abs[idx].mean(axis=1) / n)
            mse = sq_err[idx].mean(axis=1) + noise[1] * np.sqrt(var_sq[idx].mean(axis=1) / n)
            rmse[s] = np.sqrt(np.maximum(mse, 0.0))
        for name, point, sims in (("mae", abs_err.mean(), mae), ("rmse", np.sqrt(sq_err.mean()), rmse)):
            lower, upper = _quantiles(sims, q) if n_sim else (None, None)
            result["metrics"][name] = {"value": _num(point), "lower": lower, "upper": upper}
        result["undefined"] = undefined
        return result

    def save(self, path) -> None:
        """Write to ``path`` (a local path or an open binary file, e.g. from fsspec) with
        ``joblib.dump(self, path)``: a plain ``joblib.load`` of the file gives the estimator back."""
        import joblib

        if self.columns_ is None:
            raise ValueError("LossEstimator is not fitted: nothing to save")
        joblib.dump(self, path)

    @classmethod
    def load(cls, path) -> LossEstimator:
        import joblib

        obj = joblib.load(path)
        if not isinstance(obj, cls) or obj.columns_ is None:
            raise ValueError(f"{path}: not a saved, fitted LossEstimator (found {type(obj).__name__})")
        return obj


# ---------------------------------------------------------------------------------------------
# thresholds

def _fmt(x: float) -> str:
    return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e6 else f"{x:.3g}"


def compare_to_baseline(metrics: dict[str, float | None], baseline: dict[str, float | None],
                        thresholds: dict[str, dict]) -> list[dict]:
    """Breaches of the configured thresholds, in the order of ``thresholds``.

    ``thresholds`` maps a metric name to any of ``{"min": x}``, ``{"max": x}`` (absolute
    bounds: breach when ``value < min`` or ``value > max``) and ``{"max_drop": x}`` (relative to
    the baseline: for a higher-is-better metric, breach when ``value < baseline - |baseline| * x``,
    which is ``baseline * (1 - x)`` for a positive baseline; for a lower-is-better metric, when
    ``value > baseline + |baseline| * x``). Using ``|baseline|`` keeps the rule a *drop* for a
    negative baseline (an R2 below 0). Bounds are strict: a value on the bound is no breach.

    Returns one dict per breach: ``{"metric", "value", "baseline", "bound", "rule"
    ("min" | "max" | "max_drop"), "description"}``, the description a sentence such as
    "accuracy 0.712 < 0.760 (baseline 0.801 - 5%)".

    A metric whose value is None (or absent) is skipped. A None (or absent) baseline skips
    the ``max_drop`` rule only; the absolute bounds do not need it.
    """
    breaches = []
    for name, rules in thresholds.items():
        unknown = set(rules) - {"min", "max", "max_drop"}
        if unknown:
            raise ValueError(f"thresholds[{name!r}]: unknown rule(s) {sorted(unknown)}; "
                             f"use min, max, max_drop")
        rules = {k: v for k, v in rules.items() if v is not None}  # a None rule is not set
        value, base = _num(metrics.get(name)), _num(baseline.get(name))
        if value is None:
            continue

        def breach(rule: str, bound: float, description: str) -> None:
            breaches.append({"metric": name, "value": value, "baseline": base, "bound": float(bound),
                             "rule": rule, "description": description})

        if "min" in rules and value < rules["min"]:
            breach("min", rules["min"], f"{name} {_fmt(value)} < {_fmt(rules['min'])} (min)")
        if "max" in rules and value > rules["max"]:
            breach("max", rules["max"], f"{name} {_fmt(value)} > {_fmt(rules['max'])} (max)")
        if "max_drop" in rules and base is not None:
            if name not in HIGHER_IS_BETTER:
                raise ValueError(f"thresholds[{name!r}]: max_drop needs to know whether higher is "
                                 f"better; {name!r} is not one of {', '.join(HIGHER_IS_BETTER)}")
            drop = float(rules["max_drop"])
            pct = f"{drop * 100:.4g}%"
            if HIGHER_IS_BETTER[name]:
                bound = base - abs(base) * drop
                if value < bound:
                    breach("max_drop", bound,
                           f"{name} {_fmt(value)} < {_fmt(bound)} (baseline {_fmt(base)} - {pct})")
            else:
                bound = base + abs(base) * drop
                if value > bound:
                    breach("max_drop", bound,
                           f"{name} {_fmt(value)} > {_fmt(bound)} (baseline {_fmt(base)} + {pct})")
    return breaches
