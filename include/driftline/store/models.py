"""The monitored model itself, where the baseline needs it: its reference predictions
(prediction drift) and the permutation importance of its features (drift attribution).

The model file is a joblib/pickle of a scikit-learn-style estimator that takes a DataFrame
of the features (``predict_proba`` for classifiers with a probability output, ``predict``
otherwise). Unpickling runs code from the file: driftline loads only the file named in the
model's own YAML, never one that came with monitored data.

Permutation importance is scikit-learn's (``sklearn.inspection.permutation_importance``):
the drop in the model's score when one feature's values are shuffled, on labelled data the
model did not train on (``baseline.evaluation_data``), ROC AUC for binary classifiers,
accuracy for multiclass, R^2 for regression.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from driftline.config import ModelConfig
from driftline.store import Resolver, default_resolver

#: Rows of the evaluation data used for permutation importance (the cost is repeats x features
#: x predictions on this many rows).
IMPORTANCE_ROWS = 5_000
IMPORTANCE_REPEATS = 5


class ModelError(RuntimeError):
    """The model file cannot be loaded or used on the baseline data."""


def load_model(uri: str, resolver: Resolver | None = None) -> Any:
    import joblib

    fs, path = (resolver or default_resolver)(uri)
    try:
        with fs.open(path, "rb") as f:
            return joblib.load(io.BytesIO(f.read()))
    except FileNotFoundError:
        raise ModelError(f"{uri}: no such model file (baseline.model)") from None
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways
        raise ModelError(f"{uri}: cannot load the model ({type(exc).__name__}: {exc})") from exc


def model_input(cfg: ModelConfig, df: pd.DataFrame) -> pd.DataFrame:
    """The features as a model expects them: numbers as floats (missing = NaN), categories as
    Python objects, booleans as bool (missing as False would lie: kept as None)."""
    x = pd.DataFrame(index=df.index)
    for f in cfg.features:
        s = df[f.name]
        if f.type in ("numeric", "integer"):
            x[f.name] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif f.type == "boolean":
            x[f.name] = s.astype(object).where(s.notna(), None)
            if x[f.name].notna().all():
                x[f.name] = x[f.name].astype(bool)
        else:
            x[f.name] = s.astype(object).where(s.notna(), None)
    return x


def predict(cfg: ModelConfig, model: Any, x: pd.DataFrame) -> dict[str, np.ndarray]:
    """The prediction columns the endpoint would have emitted for x."""
    p = cfg.prediction
    try:
        if p.probability and cfg.problem_type == "binary_classification":
            proba = np.asarray(model.predict_proba(x))[:, 1].astype("float64")
            return {p.probability: proba, p.label: (proba >= p.threshold).astype("int64")}
        if p.probability:
            proba = np.asarray(model.predict_proba(x))
            return {p.probability: proba.max(axis=1), p.label: np.asarray(model.predict(x))}
        return {p.label: np.asarray(model.predict(x))}
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"the model cannot score the baseline data ({type(exc).__name__}: {exc})") from exc


def permutation_importance(cfg: ModelConfig, model: Any, x: pd.DataFrame, y: np.ndarray, seed: int = 0) -> dict:
    """Permutation importance of every feature on labelled data, as stored with a baseline."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    if len(x) > IMPORTANCE_ROWS:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), IMPORTANCE_ROWS, replace=False))
        x, y = x.iloc[idx], y[idx]
    scoring = {"binary_classification": "roc_auc", "multiclass_classification": "accuracy",
               "regression": "r2"}[cfg.problem_type]
    if scoring == "roc_auc" and not hasattr(model, "predict_proba"):
        scoring = "accuracy"
    from threadpoolctl import threadpool_limits

    try:
        # One OpenMP/BLAS thread: tree ensembles' predict oversubscribes a worker that runs
        # other tasks too, and then runs ten times slower, not faster.
        with threadpool_limits(1):
            res = sk_permutation_importance(model, x, y, scoring=scoring, n_repeats=IMPORTANCE_REPEATS,
                                            random_state=seed, n_jobs=1)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"permutation importance failed ({type(exc).__name__}: {exc})") from exc
    return {"method": "permutation", "scoring": scoring, "rows": int(len(x)), "repeats": IMPORTANCE_REPEATS,
            "importance": {f: float(v) for f, v in zip(x.columns, res.importances_mean)},
            "std": {f: float(v) for f, v in zip(x.columns, res.importances_std)}}
