"""Multivariate drift: a change in the joint distribution of the features (say, the sign of a
correlation) can leave every marginal, and so every univariate measure, unchanged. Two
methods catch it.

PCA reconstruction error (``fit_reconstruction``)
    NannyML's "data reconstruction" method. The reference is encoded into a numeric matrix,
    PCA keeps the components explaining ``variance`` of its variance, and a row's error is the
    Euclidean distance between its encoded vector and its projection back from those
    components. A batch's statistic is the mean error over its rows. When the relations
    between features change, rows leave the reference's principal subspace and the mean
    error rises (it falls when the batch is more "regular" than the reference, e.g. features
    that became constant; both directions are flagged). It is blunt for a shift of one
    column's mean (diluted over all the columns' noise): that is the univariate measures' job.

    Encoding, fitted on the reference and stored: a numeric column has missing (and
    non-finite) values replaced by the reference median, then is standardised with the
    reference mean and population sd (sd 0 -> 1). A categorical column (values str or None;
    other values are compared as ``str``) is one-hot encoded over the reference's
    ``MAX_CATEGORIES`` most frequent categories, missing counting as a category of its own,
    plus one "other/unseen" column. The one-hot block is multiplied by
    ``1 / sqrt(max(g, MIN_GINI))``, where ``g = 1 - sum_k p_k**2`` is the block's total
    variance on the reference (``p_k`` the shares of its columns, i.e. the Gini impurity).
    That gives every categorical column a total variance of 1, the same as a standardised
    numeric column, so PCA, which follows variance, weighs a 20-category column neither 20
    times more (raw one-hot, many columns) nor less (a near-constant binary column has raw
    variance near 0) than a numeric one. The floor ``MIN_GINI`` stops a near-constant
    column from being blown up: a row in a rare (or unseen) category then lies about
    ``sqrt(2 / MIN_GINI)`` ~ 4.5 units from the centre, a 4-5 sd outlier, not a 30 sd one.

    Threshold. The reference (a seeded random subsample of at most ``max_rows`` rows) is
    split into ``chunks`` chunks; for each chunk the encoder and the PCA are fitted on the
    *other* chunks and the left-out chunk's per-row errors are computed. These out-of-fit
    errors are what a new batch drawn from the reference distribution scores against a model
    that never saw it; their mean ``mu`` and sd ``sigma`` are stored. A batch of ``n`` rows
    is flagged when its mean error leaves ``mu +/- z * sigma / sqrt(n)`` (the central limit
    theorem for the mean of ``n`` independent rows); the p-value is the two-sided normal
    tail of ``(statistic - mu) / (sigma / sqrt(n))`` (``sigma`` floored at ``SIGMA_FLOOR``
    so a constant reference does not flag on float noise). The final model is fitted on the
    whole subsample; it is stored as JSON with each baseline version (``to_dict``).

    Why leave-chunk-out: PCA minimises the reconstruction error of the rows it is fitted
    on, so in-sample errors are biased low (more so the more encoded columns and the fewer
    rows). NannyML derives its bounds from reference chunks that were part of the fit, so
    a new batch from the very same distribution scores above them and its bounds are too
    tight; the out-of-fit errors do not have that bias. The model keeps the in-sample mean
    (``fit_error``) next to ``mu`` to show the size of the bias.

Domain classifier (``domain_classifier``)
    A classifier two-sample test (Lopez-Paz & Oquab, 2017): reference rows get label 0,
    current rows label 1 (each side a seeded subsample of at most ``max_rows``, balanced to
    the smaller side), and scikit-learn's HistGradientBoostingClassifier (missing values
    native, categoricals via its categorical support on ordinal codes) is cross-validated
    with stratified k folds. If the two samples come from one distribution no classifier
    beats chance, so the statistic is the out-of-fold ROC AUC (0.5 = indistinguishable) and
    the p-value is the one-sided Mann-Whitney U test of the out-of-fold scores of current
    rows being larger than those of reference rows (U / (n_0 n_1) is that same AUC). Drift
    is flagged when ``auc >= threshold`` and ``pvalue < alpha``: significant *and* large
    enough to matter. The result ranks features by permutation importance, the cheap kind:
    on the first held-out fold, each column in turn is shuffled once and the drop in that
    fold's AUC is its importance (one prediction of the fold per feature, batched; no
    refitting). It says which columns the classifier leans on; a feature at or below 0 does
    not help it, and with no drift all importances are noise around 0.

References: NannyML, "Data Reconstruction with PCA" (docs, how it works); D. Lopez-Paz and
M. Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017; scikit-learn PCA,
HistGradientBoostingClassifier, roc_auc_score; scipy.stats.mannwhitneyu.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

#: Most frequent reference categories one-hot encoded per categorical column; the rest, and
#: categories unseen in the reference, share the "other" column.
MAX_CATEGORIES = 20
#: Floor on a categorical column's Gini impurity when scaling its one-hot block (see module doc).
MIN_GINI = 0.1
#: Categories given their own ordinal code in the domain classifier (HistGradientBoosting
#: takes at most 255 bins, one of them reserved for missing).
MAX_CLASSIFIER_CATEGORIES = 250
#: Size of the domain classifier's booster: enough to learn a pairwise interaction (a flipped
#: correlation gives AUC ~0.9 on 2,000 + 2,000 rows), small enough that 3 folds on 5,000 +
#: 5,000 rows x 25 columns take about a second on one core.
CLASSIFIER_MAX_ITER = 50
CLASSIFIER_MAX_LEAVES = 15
#: BLAS/OpenMP threads while fitting and scoring. One: the matrices are small, so the work
#: comes as many short parallel regions whose threads spin-wait when the cores are shared (an
#: Airflow worker running other tasks); on a busy 2-core machine that measured 3-10x slower
#: than a single thread, while on an idle one a second thread saves ~20%.
THREADS = 1

#: Cells of shuffled held-out data predicted per call in the permutation importances (~32 MB).
PERMUTATION_BATCH_CELLS = 4_000_000

#: Floor on the per-row error sd (encoded units are reference standard deviations): a constant
#: reference has sigma ~ 1e-16 of float noise, which would flag every batch.
SIGMA_FLOOR = 1e-6

_FORMAT = 1


# -- shared input handling -----------------------------------------------------------------
def _check_frame(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(map(repr, missing))}; "
                         f"expected all of {list(columns)}")
    if len(frame) == 0:
        raise ValueError(f"{name}: zero rows, nothing to compare")


def _check_features(numeric: Sequence[str], categorical: Sequence[str]) -> list[str]:
    features = [*numeric, *categorical]
    if not features:
        raise ValueError("no features: give at least one numeric or categorical column")
    dupes = sorted({c for c in features if features.count(c) > 1})
    if dupes:
        raise ValueError(f"column(s) {dupes} listed more than once across numeric and categorical")
    return features


def _numeric_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Float64 values with missing and non-finite values as NaN."""
    try:
        x = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"numeric column {column!r} has non-numeric values ({exc}); "
                         "declare it categorical or clean it") from exc
    x = x.copy()
    x[~np.isfinite(x)] = np.nan
    return x


def _label(value) -> str:
    """A category as str, so that 1, 1.0 (an integer column that gained a missing value
    becomes float) and "1" are one category."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _category_codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques): ``uniques`` the distinct values as ``str``, ``codes`` an index into
    them per row, -1 for missing."""
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    remap, uniques = pd.factorize(np.array([_label(u) for u in uniques], dtype=object))
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
    return codes.astype(np.intp), np.asarray(uniques, dtype=object)


@dataclass(frozen=True)
class _Columns:
    """A frame's features as arrays, converted once: numeric ``(n, p)`` floats (NaN = missing
    or non-finite); per categorical column codes into its ``uniques`` (-1 = missing)."""

    numeric: np.ndarray
    codes: list[np.ndarray]
    uniques: list[np.ndarray]

    @classmethod
    def of(cls, frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> _Columns:
        x = np.empty((len(frame), len(numeric)))
        for j, c in enumerate(numeric):
            x[:, j] = _numeric_values(frame, c)
        pairs = [_category_codes(frame, c) for c in categorical]
        return cls(x, [p[0] for p in pairs], [p[1] for p in pairs])

    def __len__(self) -> int:
        return self.numeric.shape[0]

    def take(self, rows: np.ndarray) -> _Columns:
        return _Columns(self.numeric[rows], [c[rows] for c in self.codes], self.uniques)


def _subsample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


# -- PCA reconstruction --------------------------------------------------------------------
@dataclass
class _Encoder:
    """Numeric standardisation + scaled one-hot (see the module docstring)."""

    numeric: list[str]
    categorical: list[str]
    medians: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    categories: list[list[str | None]]  # per column: the one-hot categories (None = missing); "other" follows
    scales: np.ndarray

    @classmethod
    def fit(cls, cols: _Columns, numeric: list[str], categorical: list[str]) -> _Encoder:
        medians, means, sds = [], [], []
        for j in range(len(numeric)):
            x = cols.numeric[:, j]
            present = x[~np.isnan(x)]
            med = float(np.median(present)) if present.size else 0.0
            x = np.where(np.isnan(x), med, x)
            sd = float(np.std(x))
            medians.append(med)
            means.append(float(np.mean(x)))
            sds.append(sd if sd > 0 else 1.0)
        categories, scales = [], []
        n = len(cols)
        for codes, uniques in zip(cols.codes, cols.uniques):
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            ranked: list[tuple[int, str | None]] = [(int(k), str(u)) for u, k in zip(uniques, counts) if k > 0]
            n_missing = int(np.sum(codes < 0))
            if n_missing:
                ranked.append((n_missing, None))
            ranked.sort(key=lambda t: (-t[0], t[1] is None, t[1] or ""))
            top = ranked[:MAX_CATEGORIES]
            kept = sum(k for k, _ in top)
            shares = np.array([k for k, _ in top] + [n - kept], float) / n
            gini = 1.0 - float(np.sum(shares ** 2))
            categories.append([v for _, v in top])
            scales.append(1.0 / math.sqrt(max(gini, MIN_GINI)))
        return cls(list(numeric), list(categorical), np.array(medians, float), np.array(means, float),
                   np.array(sds, float), categories, np.array(scales, float))

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) + 1 for c in self.categories)

    def transform(self, cols: _Columns) -> np.ndarray:
        out = np.zeros((len(cols), self.width))
        p = len(self.numeric)
        if p:
            x = np.where(np.isnan(cols.numeric), self.medians, cols.numeric)
            out[:, :p] = (x - self.means) / self.sds
        start = p
        rows = np.arange(len(cols))
        for cats, scale, codes, uniques in zip(self.categories, self.scales, cols.codes, cols.uniques):
            other = len(cats)
            # Column of each distinct value: its category's, or "other" when not one-hot encoded.
            named = [i for i, v in enumerate(cats) if v is not None]
            lut = np.full(len(uniques), other, dtype=np.intp)
            if named and len(uniques):
                at = pd.Index([cats[i] for i in named], dtype=object).get_indexer(uniques)
                lut[at >= 0] = np.asarray(named)[at[at >= 0]]
            missing_col = cats.index(None) if None in cats else other
            idx = np.where(codes >= 0, lut[np.maximum(codes, 0)] if len(lut) else other, missing_col)
            out[rows, start + idx] = scale
            start += other + 1
        return out

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical,
                "medians": self.medians.tolist(), "means": self.means.tolist(), "sds": self.sds.tolist(),
                "categories": [list(c) for c in self.categories], "scales": self.scales.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> _Encoder:
        return cls(list(d["numeric"]), list(d["categorical"]), np.array(d["medians"], float),
                   np.array(d["means"], float), np.array(d["sds"], float),
                   [list(c) for c in d["categories"]], np.array(d["scales"], float))


def _fit_pca(x: np.ndarray, variance: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of the PCA keeping ``variance`` of the variance of x."""
    mean = x.mean(axis=0)
    if x.var(axis=0).sum() <= 1e-12 * x.shape[1]:  # nothing varies: no component, error = distance to the mean
        return mean, np.zeros((0, x.shape[1]))
    # svd_solver "auto": an eigendecomposition of the covariance for tall, narrow matrices
    # (scikit-learn >= 1.5), ten times faster than a full SVD and as exact for this purpose.
    pca = PCA(n_components=variance).fit(x)
    return pca.mean_, pca.components_


def _errors(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    centred = x - mean
    residual = centred - (centred @ components.T) @ components
    return np.sqrt(np.einsum("ij,ij->i", residual, residual))


@dataclass
class ReconstructionModel:
    """A fitted PCA reconstruction-error monitor; build with ``fit_reconstruction``."""

    encoder: _Encoder
    pca_mean: np.ndarray
    components: np.ndarray
    mu: float
    sigma: float
    chunk_errors: list[float]
    fit_error: float
    z: float
    variance: float
    reference_rows: int

    @property
    def columns(self) -> list[str]:
        return [*self.encoder.numeric, *self.encoder.categorical]

    def errors(self, current: pd.DataFrame) -> np.ndarray:
        """Per-row reconstruction errors of ``current``."""
        _check_frame(current, self.columns, "current")
        cols = _Columns.of(current, self.encoder.numeric, self.encoder.categorical)
        with threadpool_limits(THREADS):
            return _errors(self.encoder.transform(cols), self.pca_mean, self.components)

    def score(self, current: pd.DataFrame) -> dict:
        """Mean reconstruction error of ``current`` against ``mu +/- z * sigma / sqrt(n)``."""
        err = self.errors(current)
        n = len(err)
        stat = float(err.mean())
        se = max(self.sigma, SIGMA_FLOOR) / math.sqrt(n)
        pvalue = float(2.0 * stats.norm.sf(abs(stat - self.mu) / se))
        upper, lower = self.mu + self.z * se, self.mu - self.z * se
        return {"method": "pca_reconstruction", "statistic": stat, "threshold": float(upper),
                "lower_threshold": float(lower), "drifted": bool(stat > upper or stat < lower),
                "pvalue": pvalue, "rows": n, "reference_error": float(self.mu),
                "components": int(self.components.shape[0])}

    def to_dict(self) -> dict:
        """JSON-serialisable form; Python floats, which JSON round-trips exactly, so a reloaded
        model scores identically. Keys: ``method`` ("pca_reconstruction"), ``format`` (1),
        ``encoder`` {``numeric``, ``categorical``: column names; ``medians``, ``means``,
        ``sds``: per numeric column; ``categories``: per categorical column the one-hot
        categories in column order (null = missing), the "other" column following;
        ``scales``: per categorical column}, ``pca_mean`` (encoded width), ``components``
        (rows of the encoded width), ``mu``, ``sigma``, ``chunk_errors`` (mean out-of-fit
        error per chunk), ``fit_error`` (in-sample mean error), ``z``, ``variance``,
        ``reference_rows``."""
        return {"method": "pca_reconstruction", "format": _FORMAT, "encoder": self.encoder.to_dict(),
                "pca_mean": self.pca_mean.tolist(), "components": self.components.tolist(),
                "mu": float(self.mu), "sigma": float(self.sigma),
                "chunk_errors": [float(e) for e in self.chunk_errors], "fit_error": float(self.fit_error),
                "z": float(self.z), "variance": float(self.variance), "reference_rows": int(self.reference_rows)}

    @classmethod
    def from_dict(cls, d: dict) -> ReconstructionModel:
        if d.get("method") != "pca_reconstruction" or d.get("format") != _FORMAT:
            raise ValueError(f"not a pca_reconstruction model of format {_FORMAT}: "
                             f"method={d.get('method')!r}, format={d.get('format')!r}")
        mean = np.array(d["pca_mean"], float)
        return cls(_Encoder.from_dict(d["encoder"]), mean,
                   np.array(d["components"], float).reshape(-1, mean.size),
                   float(d["mu"]), float(d["sigma"]), [float(e) for e in d["chunk_errors"]],
                   float(d["fit_error"]), float(d["z"]), float(d["variance"]), int(d["reference_rows"]))


def fit_reconstruction(reference: pd.DataFrame, numeric: list[str], categorical: list[str], *,
                       variance: float = 0.65, chunks: int = 10, z: float = 3.0,
                       max_rows: int = 50_000, seed: int = 0) -> ReconstructionModel:
    """Fit the encoder and PCA on ``reference`` and calibrate the error's mean and sd on
    leave-chunk-out errors (see the module docstring)."""
    columns = _check_features(numeric, categorical)
    _check_frame(reference, columns, "reference")
    if not 0 < variance < 1:
        raise ValueError(f"variance={variance}: must be a share of the variance strictly between 0 and 1")
    if chunks < 2:
        raise ValueError(f"chunks={chunks}: need at least 2 to leave one out")
    if z <= 0:
        raise ValueError(f"z={z}: must be positive")
    rng = np.random.default_rng(seed)
    ref = _subsample(reference, max_rows, rng)
    if len(ref) < 2 * chunks:
        raise ValueError(f"reference: {len(ref)} rows, need at least 2 per chunk ({2 * chunks} for chunks={chunks})")
    numeric, categorical = list(numeric), list(categorical)

    with threadpool_limits(THREADS):
        return _fit(_Columns.of(ref, numeric, categorical), numeric, categorical, variance, chunks, z, rng)


def _fit(cols: _Columns, numeric: list[str], categorical: list[str], variance: float, chunks: int,
         z: float, rng: np.random.Generator) -> ReconstructionModel:
    """Leave-chunk-out calibration, then the final fit on all of ``cols``."""
    parts = np.array_split(rng.permutation(len(cols)), chunks)
    out_of_fit, chunk_errors = [], []
    for k, held_out in enumerate(parts):
        train = cols.take(np.sort(np.concatenate([p for i, p in enumerate(parts) if i != k])))
        enc = _Encoder.fit(train, numeric, categorical)
        mean, comps = _fit_pca(enc.transform(train), variance)
        err = _errors(enc.transform(cols.take(np.sort(held_out))), mean, comps)
        out_of_fit.append(err)
        chunk_errors.append(float(err.mean()))
    oof = np.concatenate(out_of_fit)

    encoder = _Encoder.fit(cols, numeric, categorical)
    x = encoder.transform(cols)
    mean, comps = _fit_pca(x, variance)
    return ReconstructionModel(encoder=encoder, pca_mean=mean, components=comps, mu=float(oof.mean()),
                               sigma=float(oof.std(ddof=1)), chunk_errors=chunk_errors,
                               fit_error=float(_errors(x, mean, comps).mean()), z=float(z),
                               variance=float(variance), reference_rows=len(cols))


# -- domain classifier ---------------------------------------------------------------------
def _classifier_matrix(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str],
                       categorical: list[str]) -> np.ndarray:
    """Numeric columns as floats, categoricals as ordinal codes over both sides' most frequent
    categories (the rest share one code), missing as NaN for the booster's native handling."""
    both = pd.concat([ref[[*numeric, *categorical]], cur[[*numeric, *categorical]]], ignore_index=True)
    cols = _Columns.of(both, numeric, categorical)
    x = np.empty((len(both), len(numeric) + len(categorical)))
    x[:, :len(numeric)] = cols.numeric
    for j, codes in enumerate(cols.codes, start=len(numeric)):
        counts = np.bincount(codes[codes >= 0], minlength=len(cols.uniques[j - len(numeric)]))
        # Ordinal code = frequency rank; past the cap, one shared code.
        rank = np.empty(len(counts), float)
        rank[np.argsort(-counts, kind="stable")] = np.minimum(np.arange(len(counts)), MAX_CLASSIFIER_CATEGORIES - 1)
        x[:, j] = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(counts) else np.nan, np.nan)
    # A column missing on every row of both sides carries nothing, and the booster's binning
    # fails on it: make it a constant.
    x[:, np.isnan(x).all(axis=0)] = 0.0
    return x


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC from ranks (ties count one half): (R_1 - n_1 (n_1 + 1) / 2) / (n_0 n_1). The same
    number as roc_auc_score without its per-call validation, for the permutation loop."""
    r = stats.rankdata(score)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _cross_validate(x: np.ndarray, y: np.ndarray, categorical: np.ndarray | None, folds: int, seed: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold scores, drop in AUC per shuffled column on the first held-out fold)."""
    scores = np.empty(len(y))
    drops = np.zeros(x.shape[1])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for f, (train, test) in enumerate(splitter.split(x, y)):
        clf = HistGradientBoostingClassifier(max_iter=CLASSIFIER_MAX_ITER, max_leaf_nodes=CLASSIFIER_MAX_LEAVES,
                                             early_stopping=False, categorical_features=categorical,
                                             random_state=seed)
        clf.fit(x[train], y[train])
        x_test, y_test = x[test], y[test]
        scores[test] = clf.predict_proba(x_test)[:, 1]
        if f > 0:
            continue
        fold_auc = _auc(y_test, scores[test])
        # The shuffled copies of the fold go through few predict calls: at these sizes the
        # booster's per-call overhead, not the rows, is what costs.
        per_call = max(1, PERMUTATION_BATCH_CELLS // x_test.size)
        for first in range(0, x.shape[1], per_call):
            block = range(first, min(first + per_call, x.shape[1]))
            stacked = np.repeat(x_test[None], len(block), axis=0)
            for b, j in enumerate(block):
                stacked[b, :, j] = rng.permutation(x_test[:, j])
            proba = clf.predict_proba(stacked.reshape(-1, x.shape[1]))[:, 1].reshape(len(block), -1)
            for b, j in enumerate(block):
                drops[j] = fold_auc - _auc(y_test, proba[b])
    return scores, drops


def domain_classifier(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                      categorical: list[str], *, threshold: float = 0.55, alpha: float = 0.05,
                      max_rows: int = 5_000, folds: int = 3, seed: int = 0) -> dict:
    """Classifier two-sample test: out-of-fold ROC AUC of telling current rows from reference
    rows, with a Mann-Whitney p-value and permutation importances (see the module docstring).
    ``rows_reference``/``rows_current`` are the rows used, after subsampling and balancing."""
    columns = _check_features(numeric, categorical)
    _check_frame(reference, columns, "reference")
    _check_frame(current, columns, "current")
    if folds < 2:
        raise ValueError(f"folds={folds}: cross-validation needs at least 2")
    n = min(len(reference), len(current), max_rows)
    if n < folds:
        raise ValueError(f"only {n} rows on the smaller side: need at least folds={folds} on each side")
    rng = np.random.default_rng(seed)
    ref, cur = _subsample(reference, n, rng), _subsample(current, n, rng)
    numeric, categorical = list(numeric), list(categorical)
    x = _classifier_matrix(ref, cur, numeric, categorical)
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    is_categorical = np.r_[np.zeros(len(numeric), bool), np.ones(len(categorical), bool)] if categorical else None

    with threadpool_limits(THREADS):
        scores, drops = _cross_validate(x, y, is_categorical, folds, seed, rng)
    auc = float(roc_auc_score(y, scores))
    pvalue = float(stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    ranked = sorted(zip(columns, drops), key=lambda t: (-t[1], t[0]))
    # On small samples a chance AUC of 0.55 is common (null sd of the AUC: sqrt((2n+1)/(12 n^2)),
    # 0.021 at 366 rows a side) and out-of-fold scores make the p-value optimistic: the bar is
    # also 3 null standard deviations above 0.5.
    threshold = max(float(threshold), 0.5 + 3.0 * float(np.sqrt((2 * n + 1) / (12.0 * n * n))))
    return {"method": "domain_classifier", "statistic": auc, "threshold": float(threshold),
            "pvalue": pvalue, "drifted": bool(auc >= threshold and pvalue < alpha),
            "rows_reference": int(n), "rows_current": int(n),
            "features": [{"feature": c, "importance": float(v)} for c, v in ranked]}
